"""
test_tarpit_bounds.py - the bounds on the recipient tarpit (issue 7):
`tarpit` above 60 s is refused when the configuration is checked, with
file:line; `tarpit-max-per-session` caps the total delay one session gets
(the last delay is shortened to what is left, the next refusal closes the
session with 421 4.7.0).

Peers: raw SMTP on 127.0.0.1 (harness.RawSMTP); transitd -n.
"""

import re
import time

import harness


def test_tarpit_over_a_minute_is_refused(transit_conf):
    t = transit_conf
    t.connector("internet")["tarpit"] = "61s"
    t.write_config()
    p = t.run_daemon("-c", t.conf_path, "-n")
    err = p.stderr.decode()
    assert p.returncode != 0, err
    assert re.search(r"%s:\d+: tarpit: \"61s\" is not a duration from 0 \(off\) to 60s"
                     % re.escape(t.conf_path), err), err
    t.connector("internet")["tarpit"] = "60s"
    t.write_config()
    p = t.run_daemon("-c", t.conf_path, "-n")
    assert p.returncode == 0, p.stderr.decode()


def test_total_tarpit_per_session_is_capped(transit_conf):
    t = transit_conf
    t.connector("internet").update({"tarpit": "2s", "tarpit-max-per-session": "5s",
                                    "max-refused-recipients": 50})
    t.write_config()
    t.start()
    with t.raw() as c:
        c.ehlo()
        c.expect("MAIL FROM:<harvester@spam.example>", 250)
        start = time.monotonic()
        for i in range(3):      # 2 s + 2 s + 1 s (what is left of 5 s)
            c.expect("RCPT TO:<nobody%d@example.test>" % i, 550, "5.1.1", timeout=20)
        took = time.monotonic() - start
        assert 5 - 0.2 <= took < 9, took
        # the budget is spent: the next refusal closes the session at once
        start = time.monotonic()
        c.send(b"RCPT TO:<nobody9@example.test>\r\n")
        harness.check_reply(c.read_reply(timeout=20), 550, "5.1.1")
        harness.check_reply(c.read_reply(timeout=20), 421, "4.7.0")
        c.wait_closed()
        assert time.monotonic() - start < 1.5
    log = t.log_text()
    assert re.findall(r"reason=tarpit delay=(\d+)s", log) == ["2", "2", "1"], log
    assert "reason=tarpit-budget-spent refused=4 tarpit-total=5s" in log, log
