"""The AGI back end against a fake FastAGI peer: command mapping, barge-in, timeouts, hang-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from panoramisk.utils import parse_agi_result

from callflows.model import Gather, Hangup, Say, Transfer
from ivr.agi.channel import Channel, ChannelGone, Outcome, transfer_status
from ivr.agi.plan import AgiRenderer, Plan
from ivr.agi.sounds import say_pieces
from ivr.prompts import Catalogue

SOUNDS = "/var/lib/meterline/sounds"
CATALOGUE = Catalogue.load()


class FakeAsterisk:
    """Answers each command with the next line its script gives, and records the commands."""

    def __init__(self, answer: Callable[[str], str]):
        self.answer = answer
        self.commands: list[str] = []

    async def send_command(self, command: str) -> dict[str, Any]:
        self.commands.append(command)
        result: dict[str, Any] = parse_agi_result(self.answer(command))
        return result


def keys_then(pressed_at_file: int | None, waits: list[str]) -> Callable[[str], str]:
    """STREAM FILE n. gets the key (if any); WAIT FOR DIGIT returns `waits` in order, then 0."""
    played = {"n": 0}
    queue = list(waits)

    def answer(command: str) -> str:
        if command.startswith("STREAM FILE"):
            played["n"] += 1
            if pressed_at_file == played["n"]:
                return f"200 result={ord(queue.pop(0))} endpos=800"
            return "200 result=0 endpos=16000"
        if command.startswith("WAIT FOR DIGIT"):
            return f"200 result={ord(queue.pop(0))}" if queue else "200 result=0"
        return "200 result=0"

    return answer


def run(peer: FakeAsterisk, plan: Plan) -> Outcome:
    return asyncio.run(Channel(peer).run(plan))


def gather_plan(
    files: int = 3, timeout: int = 10, finish: str = "#", most: int | None = None
) -> Plan:
    names = [f"{SOUNDS}/ml-{i}" for i in range(files)]
    return Plan([{"gather": names, "timeout": timeout, "finish": finish, "max": most}])


def test_a_key_during_a_prompt_cuts_it_short_and_starts_the_answer() -> None:
    peer = FakeAsterisk(keys_then(2, ["1", "5", "8", "*", "9", "#"]))
    outcome = run(peer, gather_plan(files=3))
    assert outcome.digits == "158*9"  # '*' kept for the flow, '#' ends and is dropped
    streams = [c for c in peer.commands if c.startswith("STREAM FILE")]
    assert streams == [
        f'STREAM FILE {SOUNDS}/ml-0 "0123456789*#"',
        f'STREAM FILE {SOUNDS}/ml-1 "0123456789*#"',
    ]


def test_keys_after_the_prompts_are_waited_for_with_the_gathers_timeout() -> None:
    peer = FakeAsterisk(keys_then(None, ["4", "2", "#"]))
    assert run(peer, gather_plan(timeout=10)).digits == "42"
    assert peer.commands[-1] == "WAIT FOR DIGIT 10000"


def test_nothing_keyed_before_the_timeout_is_silence() -> None:
    peer = FakeAsterisk(keys_then(None, []))
    assert run(peer, gather_plan(timeout=6)).digits == ""
    assert peer.commands[-1] == "WAIT FOR DIGIT 6000"


def test_a_timeout_after_some_keys_gives_the_keys_without_hash() -> None:
    peer = FakeAsterisk(keys_then(1, ["1", "2"]))
    assert run(peer, gather_plan()).digits == "12"


def test_a_one_key_gather_answers_at_the_first_key() -> None:
    peer = FakeAsterisk(keys_then(1, ["1"]))
    assert run(peer, gather_plan(most=1)).digits == "1"
    assert not any(c.startswith("WAIT FOR DIGIT") for c in peer.commands)


def test_a_hang_up_during_a_prompt_ends_the_channel() -> None:
    peer = FakeAsterisk(lambda command: "HANGUP")
    with pytest.raises(ChannelGone):
        run(peer, gather_plan())


def test_a_dead_channel_answer_ends_the_channel() -> None:
    answers = iter(["200 result=0 endpos=100", "511 Command Not Permitted on a dead channel"])
    peer = FakeAsterisk(lambda command: next(answers))
    with pytest.raises(ChannelGone):
        run(peer, gather_plan())


def test_a_missing_sound_file_is_skipped_while_the_caller_is_still_there() -> None:
    def answer(command: str) -> str:
        if command.startswith("STREAM FILE"):
            return "200 result=-1 endpos=0"
        if command == "CHANNEL STATUS":
            return "200 result=6"
        return "200 result=0"

    assert run(FakeAsterisk(answer), gather_plan()).digits == ""


def test_prompts_before_a_hang_up_play_to_the_end_then_the_line_hangs_up() -> None:
    peer = FakeAsterisk(lambda command: "200 result=0")
    rendered = AgiRenderer(CATALOGUE, SOUNDS).render([Say("goodbye"), Hangup()])
    outcome = run(peer, Plan.from_json(rendered.reply))
    assert outcome.digits is None
    assert peer.commands[0].endswith(' ""')  # no escape digits: not interrupted
    assert peer.commands[-1] == "HANGUP"


def test_a_busy_operator_is_announced_before_the_line_hangs_up() -> None:
    def answer(command: str) -> str:
        return "200 result=1 (BUSY)" if command.startswith("GET VARIABLE") else "200 result=0"

    peer = FakeAsterisk(answer)
    actions = [Say("transfer"), Transfer("PJSIP/operators")]
    outcome = run(peer, Plan.from_json(AgiRenderer(CATALOGUE, SOUNDS).render(actions).reply))
    assert outcome == Outcome(digits=None, dial_status="BUSY")
    dial = peer.commands.index('EXEC Dial "PJSIP/operators,30"')
    unavailable = AgiRenderer(CATALOGUE, SOUNDS).files(Say("operator_unavailable"))
    assert f'STREAM FILE {unavailable[0]} ""' in peer.commands[dial:]


def test_an_answered_transfer_says_nothing_more() -> None:
    def answer(command: str) -> str:
        return "200 result=1 (ANSWER)" if command.startswith("GET VARIABLE") else "200 result=0"

    peer = FakeAsterisk(answer)
    plan = Plan.from_json(AgiRenderer(CATALOGUE, SOUNDS).render([Transfer("PJSIP/op")]).reply)
    assert run(peer, plan).dial_status == "ANSWER"
    assert peer.commands[-1] == "GET VARIABLE DIALSTATUS"


def test_prompts_before_a_gather_join_it_so_keys_cut_them_short_too() -> None:
    actions = [Say("stored"), Gather((Say("value_keypad_full"),), timeout=10)]
    rendered = AgiRenderer(CATALOGUE, SOUNDS).render(actions)
    [step] = Plan.from_json(rendered.reply).steps
    assert step["gather"][0] == f"{SOUNDS}/{say_pieces(CATALOGUE, Say('stored'))[0].name}"
    assert step["timeout"] == 10 and step["finish"] == "#"
    assert len(rendered.spoken) == 2


def test_a_read_back_is_put_together_from_word_files() -> None:
    pieces = say_pieces(CATALOGUE, Say("readback_keyed", {"value": Decimal("158.9")}))
    assert [p.text for p in pieces] == [
        "Вы ввели",
        "сто",
        "пятьдесят",
        "восемь",
        "целых",
        "девять",
        "десятых",
    ]
    assert len({p.name for p in pieces}) == len(pieces)


def test_the_same_word_is_the_same_file_in_every_prompt() -> None:
    one = say_pieces(CATALOGUE, Say("meter_previous", {"previous": Decimal(100)}))
    other = say_pieces(CATALOGUE, Say("readback_keyed", {"value": Decimal(100)}))
    assert one[-1].name == other[-1].name and one[-1].text == "сто"


def test_a_transfer_whose_result_the_flow_awaits_reports_it_in_twilios_words() -> None:
    def answer(command: str) -> str:
        return "200 result=1 (NOANSWER)" if command.startswith("GET VARIABLE") else "200 result=0"

    peer = FakeAsterisk(answer)
    actions = [Say("transfer"), Transfer("PJSIP/operators", True)]
    outcome = run(peer, Plan.from_json(AgiRenderer(CATALOGUE, SOUNDS).render(actions).reply))
    assert outcome == Outcome(dial_status="NOANSWER", transfer_ended="no-answer")
    assert peer.commands[-1] == "GET VARIABLE DIALSTATUS"  # the flow says what comes next


def test_asterisk_dial_statuses_map_to_twilios() -> None:
    words = {s: transfer_status(s) for s in ("ANSWER", "BUSY", "NOANSWER", "CANCEL", "CHANUNAVAIL")}
    assert words == {
        "ANSWER": "completed",
        "BUSY": "busy",
        "NOANSWER": "no-answer",
        "CANCEL": "canceled",
        "CHANUNAVAIL": "failed",
    }


def test_the_first_key_may_take_longer_than_the_next_ones() -> None:
    peer = FakeAsterisk(keys_then(None, ["1", "2", "#"]))
    plan = Plan(
        [{"gather": [f"{SOUNDS}/ml-0"], "timeout": 5, "first": 10, "finish": "#", "max": None}]
    )
    assert run(peer, plan).digits == "12"
    waits = [c for c in peer.commands if c.startswith("WAIT FOR DIGIT")]
    assert waits == ["WAIT FOR DIGIT 10000", "WAIT FOR DIGIT 5000", "WAIT FOR DIGIT 5000"]


def test_units_and_abbreviations_are_said_as_the_catalogue_says_them() -> None:
    unit = next(iter(CATALOGUE.units))
    readback = Say("readback_keyed", {"value": Decimal("112.5"), "unit": unit})
    spoken = CATALOGUE.render(readback.prompt, readback.params).text
    words = [p.text for p in say_pieces(CATALOGUE, readback)]
    assert " ".join(words[1:]) in spoken  # the number and its unit, word by word
    street = Say("account_found", {"street": "ул. Ленина, д. 5"})
    assert [p.text for p in say_pieces(CATALOGUE, street)][1:] == ["улица", "ленина", "дом", "пять"]
