"""`cmake --install`: the binary, the commented example configuration and the hardened
systemd unit land where an administrator expects them, and they fit together."""

import os
import re
import shutil
import subprocess
import tomllib
import unittest
from pathlib import Path

import world


def build_dir() -> Path:
    """The CMake build folder under test: $TLSRELAY_BUILD_DIR (set by ctest), else the
    folder two levels above the binary (<build>/relay/tlsrelay)."""
    env = os.environ.get("TLSRELAY_BUILD_DIR")
    return Path(env) if env else world.relay_binary().parent.parent


def unit_settings(text: str) -> dict[str, list[str]]:
    """[Service]/[Unit]/[Install] settings of a unit file: key -> every value given."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


class Install(world.WorldTestCase):
    def setUp(self):
        super().setUp()
        self.prefix = self.world.mkdir("prefix")
        self.install()
        self.binary = self.prefix / "sbin" / "tlsrelay"
        self.config = self.prefix / "etc" / "tlsrelay" / "tlsrelay.toml"
        self.unit = self.prefix / "lib" / "systemd" / "system" / "tlsrelay.service"

    def install(self) -> str:
        cp = subprocess.run(["cmake", "--install", str(build_dir()), "--prefix", str(self.prefix)],
                            capture_output=True, timeout=120)
        self.assertEqual(cp.returncode, 0, cp.stderr.decode(errors="replace"))
        return cp.stdout.decode(errors="replace")

    def test_files_land_and_example_config_passes_check_config(self):
        """cmake --install puts sbin/tlsrelay, etc/tlsrelay/tlsrelay.toml, the unit and tlsrelay(8) in place; the installed binary accepts the installed config."""
        for path in (self.binary, self.config, self.unit,
                     self.prefix / "lib" / "sysusers.d" / "tlsrelay.conf",
                     self.prefix / "lib" / "tmpfiles.d" / "tlsrelay.conf",
                     self.prefix / "share" / "man" / "man8" / "tlsrelay.8"):
            self.assertTrue(path.is_file(), f"{path} not installed")
        self.assertTrue(os.access(self.binary, os.X_OK))
        cp = world.run_sanitized([self.binary, "check-config", "--config", self.config], self.world.root,
                                capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stdout.decode() + cp.stderr.decode())
        self.assertEqual(cp.stdout.decode().strip(), f"{self.config}: ok")
        self.assertTrue((self.prefix / "share" / "man" / "man8" / "tlsrelay.8").read_text()
                        .startswith(".TH TLSRELAY 8 "))

    def test_example_config_names_every_key_with_a_comment(self):
        """The example sets every section of the interface, and each set key carries a comment."""
        text = self.config.read_text()
        data = tomllib.loads(text)
        self.assertEqual(set(data), {"server", "queue", "dns", "delivery", "tls", "log", "metrics",
                                     "watch", "mta_sts", "tls_rpt"})
        for key in ("listen", "allow_networks", "max_message_size", "max_recipients",
                    "max_connections", "user", "tls_cert", "tls_key"):
            self.assertIn(key, data["server"])
        self.assertRegex(text, r"(?m)^# hostname = ")  # its default is computed: shown, not set
        self.assertRegex(text, r"(?m)^# \[\[delivery\.route\]\]")
        self.assertRegex(text, r"(?m)^# \[\[tls\.policy\]\]")
        for line in text.splitlines():
            if re.match(r"[a-z_]+ = ", line):
                self.assertIn(" # ", line, f"no comment on {line!r}")

    def test_unit_is_hardened_and_matches_the_example_config(self):
        """The unit runs serve on /etc/tlsrelay/tlsrelay.toml unprivileged, sandboxed, writing only the configured spool."""
        s = unit_settings(self.unit.read_text())
        self.assertEqual(s["Type"], ["simple"])
        self.assertEqual(s["ExecStart"], ["/usr/sbin/tlsrelay serve --config /etc/tlsrelay/tlsrelay.toml"])
        self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(s["User"], ["tlsrelay"])
        self.assertEqual(s["AmbientCapabilities"], ["CAP_NET_BIND_SERVICE"])
        self.assertEqual(s["CapabilityBoundingSet"], ["CAP_NET_BIND_SERVICE"])
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                           ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")):
            self.assertEqual(s[key], [value], key)
        spool = tomllib.loads(self.config.read_text())["queue"]["dir"]
        self.assertEqual(s["ReadWritePaths"], [spool])
        self.assertIn(f"d {spool} 0700 tlsrelay tlsrelay -",
                      (self.prefix / "lib" / "tmpfiles.d" / "tlsrelay.conf").read_text())
        self.assertRegex((self.prefix / "lib" / "sysusers.d" / "tlsrelay.conf").read_text(),
                         r"(?m)^u tlsrelay ")

    def test_systemd_analyze_verify_accepts_the_unit(self):
        """systemd-analyze verify finds no error in the installed unit (ExecStart pointed at the installed binary)."""
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze missing: scripts/common.sh TEST_PACKAGES has systemd")
        unit = self.world.root / "tlsrelay.service"
        unit.write_text(self.unit.read_text().replace("/usr/sbin/tlsrelay", str(self.binary)))
        cp = subprocess.run([analyze, "--man=no", "verify", str(unit)], capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stdout.decode() + cp.stderr.decode())
        self.assertEqual(cp.stderr.decode().strip(), "")

    def test_reinstall_keeps_an_edited_config(self):
        """A second cmake --install leaves an administrator's edited tlsrelay.toml alone."""
        edited = self.config.read_text().replace('retry_min = "5m"', 'retry_min = "1m"')
        self.config.write_text(edited)
        out = self.install()
        self.assertIn("Keeping:", out)
        self.assertEqual(self.config.read_text(), edited)


if __name__ == "__main__":
    unittest.main()
