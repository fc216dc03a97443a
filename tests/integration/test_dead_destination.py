"""
test_dead_destination.py - a next hop whose every host refuses connections
is a dead destination: the mail queued for it is deferred together and waits
for its retry time (queue/remote.c rconn_give_up, as Postfix's qmgr does).

Found after issue 6's fairness change: with several connections per
destination, each failed attempt freed a slot that went straight back to
the same hop, so transitd connected to the dead host in a busy loop (about
100,000 attempts in 10 s for 200 messages) and most messages were never
even deferred.
"""
import socket
import time

import pytest

import harness
import sendpeers as sp
from sendpeers import message, relay_send

MESSAGES = 30


def silent_listener():
    """A loopback listener that never accepts: connections complete in its
    backlog and wait for a greeting that never comes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


@pytest.mark.timeout(120)
def test_refused_smart_host_defers_without_a_connect_loop(transit_conf):
    t = transit_conf
    lsock = silent_listener()
    dead = lsock.getsockname()[1]
    sp.configure_sender(t, 53, {"dead": sp.smarthost_connector(
        ["*"], ["[127.0.0.1]:%d" % dead], **{"max-connections-per-destination": 10})},
        queue={"retry": ["10m"], "expire": "1h"})
    t.start()
    # while the first connections wait for a greeting, the mail piles up
    # and more connections open (one per 4 queued messages, up to 10) ...
    qids = [relay_send(t, "app@example.test", ["x%d@far.test" % i], message("m%d" % i))
            for i in range(MESSAGES)]
    harness.wait_until(lambda: t.log_text(settle=0).count("route to=") >= MESSAGES, 30,
                       what="every message routed")
    # ... then the host dies: the waiting connections are reset, new ones refused
    lsock.close()
    harness.wait_until(lambda: t.log_text(settle=0).count(" defer ") >= MESSAGES, 30,
                       what="every message deferred")
    time.sleep(2.0)  # a busy loop would go on here
    log = t.log_text()
    attempts = log.count("smtp connect-failed")
    print("%d messages, %d connection attempts" % (MESSAGES, attempts))
    for q in qids:
        assert " %s defer " % q in log, q
    # one attempt per wave of arrivals at most; never a loop
    assert attempts <= MESSAGES + 10, "%d connection attempts for %d messages" % (attempts,
                                                                               MESSAGES)
