"""SIGHUP: the running relay takes a new configuration, or keeps the old one when the
new one is bad, without dropping connections."""

import os
import signal
import unittest

import world


class Reload(world.WorldTestCase):
    def hup(self) -> int:
        mark = self.relay.log_mark()
        os.kill(self.relay.pid(), signal.SIGHUP)
        return mark

    def ehlo_size(self, client) -> str:
        reply = client.expect("EHLO client.example", 250)
        return next(l for l in reply.lines if l.startswith("SIZE"))

    def client(self) -> world.RawSmtp:
        c = world.RawSmtp(self.relay.address)
        self.world.on_cleanup(c.close)
        c.greeting()
        return c

    def setUp(self):
        super().setUp()
        self.relay = self.start_relay(server={"max_message_size": 100000})

    def test_new_limits_apply_after_sighup(self):
        """After SIGHUP a changed max_message_size is advertised, and a session opened before it survives."""
        before = self.client()
        self.assertEqual(self.ehlo_size(before), "SIZE 100000")
        self.relay.config["server"]["max_message_size"] = 200000
        self.relay.write_config()
        mark = self.hup()
        self.relay.wait_for_log(r"reload -- configuration ", since=mark)
        after = self.client()
        self.assertEqual(self.ehlo_size(after), "SIZE 200000")
        self.assertEqual(before.cmd("NOOP").code, 250)  # the older session is still served

    def test_bad_configuration_is_refused_and_the_old_one_kept(self):
        """A reload with a bad key is refused with FILE:LINE and the running configuration stays."""
        self.relay.config["server"]["max_recipients"] = "many"
        self.relay.write_config()
        mark = self.hup()
        self.relay.wait_for_log(r"warning: reload refused: .*tlsrelay\.toml:\d+: \"server\.max_recipients\" "
                                r"must be an integer", since=mark)
        client = self.client()
        self.assertEqual(self.ehlo_size(client), "SIZE 100000")

    def test_listen_change_needs_a_restart(self):
        """A changed listen address is reported as needing a restart, and the relay keeps listening where it was."""
        self.relay.config["server"]["listen"] = [f"127.0.0.1:{self.world.ports.port()}"]
        self.relay.write_config()
        mark = self.hup()
        self.relay.wait_for_log(r"reload: server\.listen changes need a restart; kept", since=mark)
        self.relay.wait_for_log(r"reload -- configuration ", since=mark)
        client = self.client()
        self.assertEqual(client.cmd("NOOP").code, 250)


if __name__ == "__main__":
    unittest.main()
