/*
 * reload_cmd.h - `transitctl reload`: ask the running transitd to load
 * its configuration again and report the outcome.
 *
 * Today the request is SIGHUP to the pid in <spool>/transitd.lock, and
 * the answer is read from <spool>/reload.status (ctl/reload_status.h):
 * the command waits, bounded, for an attempt newer than the one it saw
 * before the signal. When the control socket exists, the same verb sends
 * {"verb": "reload"} there and the daemon answers with daemon_reload()'s
 * result; only this file changes.
 *
 * Exit status: 0 reloaded; 1 refused (the reason, "file:line: ...", on
 * stderr; the daemon keeps its configuration), daemon not running, or no
 * answer in time; 2 usage.
 */
#ifndef TRANSIT_CTL_RELOAD_CMD_H
#define TRANSIT_CTL_RELOAD_CMD_H

int ctl_reload(const char *conf_path, int argc, char **argv);

#endif
