/*
 * metrics_families.c - the metric families transit exposes on /metrics
 * (see metrics.h; names follow the Prometheus naming conventions: a
 * transit_ prefix, _total for counters). docs/operations.md lists them.
 */
#include "util/metrics.h"

const struct metric_family metric_received = {
	"transit_messages_received_total", METRIC_COUNTER,
	"Messages accepted (committed to the queue) per receive connector.", {"connector", NULL}};
const struct metric_family metric_delivered = {
	"transit_messages_delivered_total", METRIC_COUNTER,
	"Recipients delivered per send connector (\"local\": mailboxes).", {"connector", NULL}};
const struct metric_family metric_deferred = {
	"transit_messages_deferred_total", METRIC_COUNTER,
	"Recipients deferred (temporary failure, retried later) per send connector.",
	{"connector", NULL}};
const struct metric_family metric_failed = {
	"transit_messages_failed_total", METRIC_COUNTER,
	"Recipients failed for good (bounced or dropped) per send connector.", {"connector", NULL}};
const struct metric_family metric_queue = {
	"transit_queue_messages", METRIC_GAUGE,
	"Messages in the queue by state (ready, active, deferred).", {"state", NULL}};
const struct metric_family metric_sessions = {
	"transit_smtp_sessions", METRIC_GAUGE, "Inbound SMTP sessions open.", {NULL, NULL}};
const struct metric_family metric_tls = {
	"transit_tls_handshakes_total", METRIC_COUNTER,
	"TLS handshakes completed by direction (inbound, outbound) and protocol version.",
	{"direction", "version"}};
const struct metric_family metric_backpressure = {
	"transit_backpressure_level", METRIC_GAUGE,
	"Back-pressure level: 0 normal, 1 medium, 2 high.", {NULL, NULL}};
const struct metric_family metric_tracking_errors = {
	"transit_tracking_write_errors_total", METRIC_COUNTER,
	"Message tracking log writes that failed.", {NULL, NULL}};
const struct metric_family metric_auth_failures = {
	"transit_auth_failures_total", METRIC_COUNTER,
	"SMTP AUTH attempts refused (bad credentials) per receive connector.", {"connector", NULL}};
const struct metric_family metric_auth_lockouts = {
	"transit_auth_lockouts_total", METRIC_COUNTER,
	"SMTP AUTH attempts refused because of too many failures (454 4.7.0) per receive connector.",
	{"connector", NULL}};

void metrics_tracking_write_error(void) { metrics_add(&metric_tracking_errors, NULL, NULL, 1); }
