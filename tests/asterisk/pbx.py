"""A real Asterisk for the tests: the cached sid chroot, configured for loopback only.

Each test session gets its own instance folder inside the chroot (`/srv/meterline-…`): config,
run, log, spool and astdb live there, so runs never share state, and the rendered prompts sit
there too, so METERLINE_ASTERISK_SOUNDS names them as Asterisk (inside the chroot) sees them.
Asterisk runs as the `asterisk` user. PJSIP and RTP bind 127.0.0.1; no other module that
listens (AMI, HTTP/ARI, IAX2, …) is loaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CHROOT_SCRIPT = Path(__file__).with_name("chroot.sh")
LINE = "597904"  # the number callers dial (the billing centre's 59-79-04)
GUARDED_LINE = "597905"  # handed to a second `meterline agi` that must refuse Asterisk

MODULES = """
res_pjproject res_sorcery_config res_sorcery_memory res_sorcery_astdb res_pjsip
res_pjsip_session res_pjsip_sdp_rtp res_pjsip_caller_id res_pjsip_endpoint_identifier_ip
res_pjsip_rfc3326 res_pjsip_dtmf_info res_pjsip_pubsub res_rtp_asterisk chan_pjsip res_speech
res_timing_timerfd codec_ulaw codec_gsm format_pcm format_gsm format_wav res_agi
app_dial app_playback pbx_config func_callerid func_channel res_musiconhold bridge_simple
bridge_native_rtp bridge_builtin_features app_echo
""".split()


def free_port() -> int:
    """A loopback port free for both TCP and UDP right now (SIP, RTP and FastAGI use them)."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def build_chroot() -> Path:
    """The chroot's path, built (minutes, once per machine) if absent; RuntimeError if it fails."""
    if os.geteuid() != 0:
        raise RuntimeError("building and entering the Asterisk chroot needs root")
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    done = subprocess.run(
        ["bash", str(CHROOT_SCRIPT)], capture_output=True, text=True, timeout=1500
    )
    if done.returncode != 0:
        raise RuntimeError(f"{CHROOT_SCRIPT} failed: {done.stderr[-600:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Pbx:
    """One Asterisk instance in the chroot."""

    chroot: Path
    name: str
    sip_port: int
    agi_port: int
    rtp_start: int
    guarded_agi_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> str:
        """The instance folder as Asterisk sees it."""
        return f"/srv/{self.name}"

    @property
    def host_home(self) -> Path:
        """The instance folder as this host sees it."""
        return self.chroot / "srv" / self.name

    @property
    def sounds(self) -> str:
        """METERLINE_ASTERISK_SOUNDS: where Asterisk finds the rendered prompts."""
        return f"{self.home}/sounds"

    def configure(self) -> None:
        """Write the instance's config files."""
        home, host = self.home, self.host_home
        for sub in ("etc", "run", "log", "spool", "lib", "sounds"):
            (host / sub).mkdir(parents=True, exist_ok=True)
        files = {
            "asterisk.conf": f"""[directories]
astetcdir => {home}/etc
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => {home}/lib
astdbdir => {home}/lib
astkeydir => {home}/lib
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {home}/spool
astrundir => {home}/run
astlogdir => {home}/log
[options]
documentation_language = en_US
""",
            "modules.conf": "[modules]\nautoload = no\n"
            + "".join(f"load = {m}.so\n" for m in MODULES),
            "logger.conf": "[general]\n[logfiles]\n"
            "messages.log => notice,warning,error,verbose(3)\n",
            "rtp.conf": f"[general]\nrtpstart = {self.rtp_start}\n"
            f"rtpend = {self.rtp_start + 998}\n",
            "pjsip.conf": f"""[loopback]
type = transport
protocol = udp
bind = 127.0.0.1:{self.sip_port}

[carrier]
type = endpoint
transport = loopback
context = from-carrier
disallow = all
allow = ulaw
dtmf_mode = rfc4733
media_address = 127.0.0.1
bind_rtp_to_media_address = yes
rtp_symmetric = yes
direct_media = no

[carrier]
type = identify
endpoint = carrier
match = 127.0.0.1
""",
            "extensions.conf": f"""[from-carrier]
exten => {LINE},1,AGI(agi://127.0.0.1:{self.agi_port}/meterline)
 same => n,Hangup()
exten => {GUARDED_LINE},1,AGI(agi://127.0.0.1:{self.guarded_agi_port}/meterline)
 same => n,Hangup()

[operators]
exten => busy,1,Busy(5)
exten => noanswer,1,Wait(60)
""",
            "musiconhold.conf": "[general]\n",
            "ccss.conf": "[general]\n",
        }
        for name, text in files.items():
            (host / "etc" / name).write_text(text)
        subprocess.run(
            ["chroot", str(self.chroot), "chown", "-R", "asterisk:asterisk", home], check=True
        )

    def start(self) -> None:
        """Start Asterisk in the foreground (as the asterisk user); wait until SIP answers."""
        self.configure()
        self.process = subprocess.Popen(
            [
                "chroot",
                "--userspec=asterisk:asterisk",
                str(self.chroot),
                "/usr/sbin/asterisk",
                "-f",
                "-n",
                "-C",
                f"{self.home}/etc/asterisk.conf",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/var/lib/asterisk"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"asterisk exited ({self.process.returncode}): {self.log()[-1500:]}"
                )
            if "Asterisk Ready" in self.log() or self._fully_booted():
                return
            time.sleep(0.2)
        raise RuntimeError(f"asterisk did not come up: {self.log()[-1500:]}")

    def _fully_booted(self) -> bool:
        return (self.host_home / "run" / "asterisk.ctl").exists() and "PJSIP" in self.log()

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command against this instance."""
        done = subprocess.run(
            [
                "chroot",
                str(self.chroot),
                "/usr/sbin/asterisk",
                "-C",
                f"{self.home}/etc/asterisk.conf",
                "-rx",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return done.stdout

    def log(self) -> str:
        """The instance's messages log so far."""
        try:
            return (self.host_home / "log" / "messages.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop Asterisk and remove the instance folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.host_home, ignore_errors=True)
