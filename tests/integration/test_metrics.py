"""
test_metrics.py - /metrics and /status on control.http (issue 8, "Metrics
and status page").

/metrics is scraped with urllib and parsed with the Prometheus client's own
text parser (prometheus_client.parser.text_string_to_metric_families), so a
malformed exposition fails the test; the counters must move with real
traffic: a message received over STARTTLS (received, TLS inbound version),
delivered to a mailbox (delivered{connector="local"}), and one relayed to a
smart host that refuses connections (deferred{connector="dead"}).

/status is rendered by headless Chromium (--dump-dom for the text, and a
screenshot): the deferred message's sender is a quoted local part holding a
<script> element, which must show as text and never become an element.

A control.http address that is not loopback is refused by transitd -n,
unless http-allow-remote = true.
"""
import os
import shutil
import socket
import subprocess
import urllib.request

import pytest

import conftest
import harness
import sendpeers as sp
from sendpeers import dns  # noqa: F401  (the module's nameserver fixture)
from sendpeers import message, relay_send

try:
    from prometheus_client.parser import text_string_to_metric_families
    HAVE_PROM = True
except ImportError:
    HAVE_PROM = False

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "\"<script>document.title='pwned'</script>\"@evil.test"


def free_port():
    return conftest.free_ports(1)[0]


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def with_http(t, extra=None):
    t.http_port = free_port()
    t.cfg["control"] = dict({"http": "127.0.0.1:%d" % t.http_port}, **(extra or {}))
    t.write_config()
    return t


def get(t, path, timeout=10):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (t.http_port, path),
                                timeout=timeout) as r:
        return r.status, r.headers, r.read().decode("utf-8")


def scrape(t):
    """{(sample name, frozenset(labels)): value} from /metrics."""
    status, headers, text = get(t, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, text


def value(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0)


@pytest.mark.timeout(120)
def test_metrics_counters_move_with_traffic(transit_conf):
    if not HAVE_PROM:
        pytest.skip("python3-prometheus-client not installed")
    t = transit_conf
    sp.configure_sender(t, 53, {"dead": sp.smarthost_connector(
        ["far.test"], ["[127.0.0.1]:%d" % closed_port()])},
        queue={"retry": ["10m"], "expire": "1h"})
    with_http(t)
    t.start()
    before, text = scrape(t)
    assert "# TYPE transit_messages_received_total counter" in text
    assert value(before, "transit_messages_received_total", connector="internet") == 0

    # one message over STARTTLS, delivered to alice's mailbox
    with t.raw() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        c.mail_transaction("bob@example.test", ["alice@example.test"], harness.make_message("m1"))
    t.wait_for_mail("alice@example.test", 1)
    # one relayed to a smart host that refuses: deferred
    relay_send(t, "app@example.test", ["x@far.test"], message("m2"))
    sp.wait_log(t, r" defer to=<x@far.test>")

    after, text = scrape(t)
    assert value(after, "transit_messages_received_total", connector="internet") == 1
    assert value(after, "transit_messages_received_total", connector="relay") == 1
    assert value(after, "transit_messages_delivered_total", connector="local") == 1
    assert value(after, "transit_messages_deferred_total", connector="dead") == 1
    tls = {dict(k[1])["version"]: v for k, v in after.items()
           if k[0] == "transit_tls_handshakes_total" and dict(k[1])["direction"] == "inbound"}
    assert sum(tls.values()) >= 1 and set(tls) <= {"TLSv1.2", "TLSv1.3"}, tls
    assert value(after, "transit_queue_messages", state="deferred") == 1
    assert ("transit_backpressure_level", frozenset()) in after
    assert ("transit_smtp_sessions", frozenset()) in after


def chromium(args, timeout=90):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--disable-dev-shm-usage"] + args,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(240)
def test_status_page_shows_hostile_sender_escaped(transit_conf):
    if CHROMIUM is None:
        pytest.skip("chromium not installed")
    t = transit_conf
    sp.configure_sender(t, 53, {"dead": sp.smarthost_connector(
        ["far.test"], ["[127.0.0.1]:%d" % closed_port()])},
        queue={"retry": ["10m"], "expire": "1h"})
    with_http(t)
    t.start()
    relay_send(t, HOSTILE, ["victim@far.test"], message("hostile", sender="app@example.test"))
    sp.wait_log(t, r" defer to=<victim@far.test>")

    status, headers, html = get(t, "/status")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<script>" not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    # the queue by next hop, and the back-pressure level
    assert "<tr><td>dead:far.test</td><td>1</td><td>1</td>" in html, html
    assert "back pressure: <b>normal</b>" in html

    url = "http://127.0.0.1:%d/status" % t.http_port
    p = chromium(["--dump-dom", url])
    dom = p.stdout.decode("utf-8", "replace")
    assert "recent-failures" in dom, (p.returncode, p.stderr.decode(errors="replace")[-2000:])
    # the DOM serialiser escapes text nodes: the sender is text, not an element
    assert "<script>" not in dom
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "<title>transit status</title>" in dom  # the script never ran
    assert "victim@far.test" in dom and "far.test" in dom

    shot = os.path.join(t.dir, "status.png")
    p = chromium(["--screenshot=%s" % shot, "--window-size=1280,900", url])
    assert os.path.exists(shot) and os.path.getsize(shot) > 1000, p.stderr[-2000:]
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_non_loopback_http_refused_at_check(transit_conf):
    t = transit_conf
    t.cfg["control"] = {"http": "0.0.0.0:%d" % free_port()}
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    err = p.stderr.decode()
    assert p.returncode != 0
    assert "not a loopback address" in err and "http-allow-remote" in err, err
    assert "transit.conf:" in err

    t.cfg["control"]["http-allow-remote"] = True
    t.write_config()
    p = t.run_daemon("-n", "-c", t.conf_path)
    assert p.returncode == 0, p.stderr.decode()


def test_unknown_path_and_method(transit_conf):
    t = with_http(transit_conf)
    t.start()
    with pytest.raises(urllib.error.HTTPError) as e:
        get(t, "/nothing")
    assert e.value.code == 404
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % t.http_port, data=b"x",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


@pytest.fixture
def peers(request, transit_conf):
    """Receiver transitds for one test, stopped at its end."""
    p = sp.Peers(os.path.join(transit_conf.dir, "peers"))
    os.makedirs(p.base)
    yield p
    problems = p.stop_all()
    if problems:
        pytest.fail("peer problems: %s" % "\n".join(problems), pytrace=False)


@pytest.mark.timeout(120)
def test_outbound_tls_and_relayed_delivery_counted(transit_conf, dns, peers):
    if not HAVE_PROM:
        pytest.skip("python3-prometheus-client not installed")
    t = transit_conf
    rx = peers.receiver(sp.IP_MX1, t.port_smtp, "example.net", users=["known@example.net"])
    # the receiver offers STARTTLS with a self-signed certificate: opportunistic TLS uses it
    sp.configure_sender(t, dns.port, {"internet": sp.dns_connector(t.port_smtp,
                                                                   tls="opportunistic")})
    with_http(t)
    t.start()
    relay_send(t, "alice@example.test", ["known@example.net"], message("tls out"))
    rx.wait_for_mail("known@example.net", 1, timeout=20)
    sp.wait_log(t, r"send to=<known@example\.net>.*status=2\.0\.0")
    m, _ = scrape(t)
    out = {dict(k[1])["version"]: v for k, v in m.items()
           if k[0] == "transit_tls_handshakes_total" and dict(k[1])["direction"] == "outbound"}
    assert sum(out.values()) == 1 and set(out) <= {"TLSv1.2", "TLSv1.3"}, out
    assert value(m, "transit_messages_delivered_total", connector="internet") == 1
    assert value(m, "transit_messages_received_total", connector="relay") == 1
