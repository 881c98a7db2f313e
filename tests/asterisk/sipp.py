"""SIPp calls into the test Asterisk: an INVITE with μ-law and RFC 4733 events, the caller's
keys played from a per-call pcap, then a hang-up by either side."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.asterisk.pbx import LINE, free_port

SCENARIO = """<?xml version="1.0" encoding="UTF-8"?>
<scenario name="meterline caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=meterline 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
{ending}
</scenario>
"""

# The line hangs up (after its goodbye): answer its BYE.
THEIR_BYE = """  <recv request="BYE" timeout="{timeout_ms}"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>"""

# The caller hangs up first, after `hang_up_ms`.
OUR_BYE = """  <pause milliseconds="{hang_up_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200"/>"""


@dataclass
class SippRun:
    """What SIPp reported."""

    returncode: int
    output: str
    errors: str


def place_calls(
    folder: Path,
    sip_port: int,
    callers: list[str],
    pcap: Path,
    hang_up_ms: int | None = None,
    timeout_s: int = 90,
    line: str = LINE,
    rate: int | None = None,
) -> SippRun:
    """Place one call per caller number, all at once, each playing `pcap`; wait for all.

    With `hang_up_ms` the caller hangs up then; otherwise the line must hang up (BYE) in time.
    `rate` spreads the calls' starts (calls per second; default: all within one second).
    """
    if hang_up_ms is None:
        ending = THEIR_BYE.format(timeout_ms=timeout_s * 1000)
    else:
        ending = OUR_BYE.format(hang_up_ms=hang_up_ms)
    scenario = folder / "caller.xml"
    scenario.write_text(SCENARIO.format(pcap=pcap, ending=ending))
    numbers = folder / "callers.csv"
    numbers.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in callers))
    count = len(callers)
    command = [
        "sipp",
        f"127.0.0.1:{sip_port}",
        "-sf",
        str(scenario),
        "-inf",
        str(numbers),
        "-s",
        line,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_port()),
        "-m",
        str(count),
        "-l",
        str(count),
        "-r",
        str(rate or count),
        "-rp",
        "1000",
        "-nostdin",
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(folder / "sipp-errors.log"),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s + 30, cwd=folder
    )
    errors = (
        (folder / "sipp-errors.log").read_text() if (folder / "sipp-errors.log").exists() else ""
    )
    return SippRun(done.returncode, done.stdout[-3000:], errors[-3000:])
