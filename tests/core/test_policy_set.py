"""Policy sets: versions in force from an instant, selection rules, the version named by outputs."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor import codec
from processor.replay import replay
from processor.sla import engine
from processor.sla.outputs import Breach, Escalation, Output
from processor.sla.policy import PolicyError, default_document, parse_policy
from processor.sla.policy_set import Facts, load_policies
from processor.sla.ticket import Ticket
from processor.sla.vocabulary import Tier
from schemas.cloudevents import InvalidEvent, parse_event
from schemas.outputs import data as output_data
from tests.core.factories import DEFAULT_POLICY, MIN, H, envelope, make_event, opened_data, to_bytes
from tests.histories import histories

EXAMPLE = Path(__file__).parents[2] / "examples" / "policies" / "contracts" / "set.toml"
RENEWAL = datetime(2027, 1, 1, tzinfo=UTC)


def write_set(tmp_path: Path, text: str, **files: str) -> Path:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    path = tmp_path / "set.toml"
    path.write_text(text)
    return path


RENEWED = """
default = "standard"
[[policies.standard.versions]]
label = "v1"
effective_from = 2026-01-01T00:00:00Z
[[policies.standard.versions]]
label = "v2"
effective_from = {cut}
[policies.standard.versions.overrides.response_targets]
high = {{ premium = "PT30M", select = "PT45M", basic = "PT60M" }}
[policies.standard.versions.overrides.escalation]
high = [
  {{ step = 1, after = "PT0S", actions = [{{ role = "tier1", action = "route" }}] }},
  {{ step = 2, after = "PT1H", actions = [{{ role = "tier2", action = "route" }}] }},
]
[[policies.office.versions]]
label = "v1"
effective_from = 2026-01-01T00:00:00Z
file = "office.toml"
[[select]]
policy = "office"
customer_id = ["c3"]
[[select]]
policy = "office"
region = ["emea"]
"""

OFFICE = """
[calendars.office]
timezone = "Europe/London"
weekly = { mon = ["09:00-17:00"], tue = ["09:00-17:00"], wed = ["09:00-17:00"], thu = ["09:00-17:00"], fri = ["09:00-17:00"] }
[clocks]
normal = "office"
low = "office"
high = "office"
"""


def renewed(tmp_path: Path, cut: datetime = RENEWAL) -> Path:
    office = _seed_text() + OFFICE
    text = RENEWED.format(cut=cut.isoformat().replace("+00:00", "Z"))
    return write_set(tmp_path, text, **{"office.toml": office})


def _seed_text() -> str:
    root = Path(__file__).parents[2] / "processor" / "sla" / "default_policy.toml"
    return root.read_text()


def open_event(subject: str, at: datetime, **data: Any) -> Any:
    return make_event("ticket.opened", subject, at, opened_data(**data), event_id=f"{subject}/0")


# -- loading ---------------------------------------------------------------------------------


def test_a_plain_policy_file_is_the_set_of_one_version(tmp_path: Path) -> None:
    book = load_policies(None)
    assert list(book.versions) == ["default@1"]
    only = book.versions["default@1"]
    # Upgrading keeps stored deadlines: the version carries the plain policy's fingerprint.
    assert only.fingerprint == DEFAULT_POLICY.fingerprint
    assert book.select(Facts("anyone", Tier.BASIC), datetime(1999, 1, 1, tzinfo=UTC)) is only


def test_versions_take_effect_at_their_instant_and_rules_choose_the_policy(tmp_path: Path) -> None:
    book = load_policies(renewed(tmp_path))
    facts = Facts("c1", Tier.PREMIUM)
    just_before = RENEWAL - timedelta(microseconds=1)
    assert book.select(facts, just_before).key == "standard@v1"
    assert book.select(facts, RENEWAL).key == "standard@v2"
    # Before a policy's first version: that first version (history older than the set).
    assert book.select(facts, datetime(2020, 1, 1, tzinfo=UTC)).key == "standard@v1"
    assert book.select(Facts("c3", Tier.BASIC), RENEWAL).key == "office@v1"
    assert book.select(Facts("c1", Tier.BASIC, region="emea"), RENEWAL).key == "office@v1"
    assert book.select(Facts("c1", Tier.BASIC, region="apac"), RENEWAL).key == "standard@v2"


def test_the_example_set_loads() -> None:
    book = load_policies(EXAMPLE)
    assert set(book.versions) == {"standard@2026", "standard@2027", "apac@2026"}
    assert book.select(Facts("acme-au", Tier.SELECT), RENEWAL).key == "apac@2026"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            'high = { premium = "soon", select = "PT1H", basic = "PT1H" }',
            "response_targets.high.premium",
        ),
        # Tables merge over the base: only `premium` changes, and it must be positive.
        (
            'high = { premium = "PT0S" }',
            "response_targets.high.premium: Value error, must be positive",
        ),
    ],
)
def test_an_invalid_version_names_the_file_the_version_and_the_field(
    tmp_path: Path, override: str, named: str
) -> None:
    text = RENEWED.format(cut="2027-01-01T00:00:00Z").replace(
        'high = {{ premium = "PT30M", select = "PT45M", basic = "PT60M" }}'.replace(
            "{{", "{"
        ).replace("}}", "}"),
        override,
    )
    path = write_set(tmp_path, text, **{"office.toml": _seed_text() + OFFICE})
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    message = str(caught.value)
    assert str(path) in message
    assert "policies.standard version v2" in message
    assert named in message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00Z\n'
         '[[select]]\npolicy = "b"\nregion = ["x"]\n', "select.0.policy names no policy: 'b'"),
        ('default = "b"\n[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00Z\n',
         "default names no policy: 'b'"),
        ('[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00\n',
         "effective_from needs a time zone offset"),
        ('[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00Z\n'
         '[[policies.a.versions]]\nlabel = "1"\neffective_from = 2027-01-01T00:00:00Z\n',
         "policies.a: Value error, version labels must be distinct"),
        ('[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00Z\n'
         '[[policies.a.versions]]\nlabel = "2"\neffective_from = 2026-01-01T00:00:00Z\n',
         "two versions take effect at the same instant"),
        ('[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00Z\nfile = "no.toml"\n',
         "policies.a version 1: cannot read the policy"),
        ('[[policies.a.versions]]\nlabel = "1 2"\neffective_from = 2026-01-01T00:00:00Z\n',
         "policies.a.versions.0.label"),
        ('[[policies.a.versions]]\nlabel = "1"\neffective_from = 2026-01-01T00:00:00Z\n'
         '[[select]]\npolicy = "a"\ncolour = ["red"]\n', "select.0.colour: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_an_invalid_set_names_the_file_and_the_field(tmp_path: Path, text: str, named: str) -> None:
    if "default" not in text:
        text = 'default = "a"\n' + text
    path = write_set(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policies(path)
    assert str(path) in str(caught.value)
    assert named in str(caught.value)


# -- the engine under a set ------------------------------------------------------------------


def run(book: Any, *events: Any) -> tuple[engine.State | None, list[Output]]:
    state: engine.State | None = None
    outputs: list[Output] = []
    for event in events:
        if isinstance(event, datetime):
            decision = engine.advance(state, event, book)  # type: ignore[arg-type]
        else:
            decision = engine.decide(state, event, book)
        state = decision.state
        outputs += decision.outputs
    return state, outputs


def test_a_ticket_keeps_the_version_in_force_when_it_opened(tmp_path: Path) -> None:
    """High/premium: 60 min under v1, 30 min under v2 (the renewal)."""
    book = load_policies(renewed(tmp_path))
    before = RENEWAL - 10 * MIN
    state, outputs = run(book, open_event("T-old", before, severity="high"), RENEWAL + 2 * H)
    breaches = [o for o in outputs if isinstance(o, Breach)]
    assert [b.time for b in breaches] == [before + 60 * MIN]  # v1's target, though v2 is in force
    assert {o.policy for o in outputs} == {"standard@v1"}
    assert isinstance(state, Ticket)
    assert state.policy == "standard@v1"
    _, outputs = run(book, open_event("T-new", RENEWAL, severity="high"), RENEWAL + 2 * H)
    assert [o.time for o in outputs if isinstance(o, Breach)] == [RENEWAL + 30 * MIN]
    # v2's ladder: step 2 one hour after the clock start (v1's: two).
    steps = [(o.step, o.time) for o in outputs if isinstance(o, Escalation)]
    assert steps == [(1, RENEWAL), (2, RENEWAL + H)]
    assert {o.policy for o in outputs} == {"standard@v2"}


def test_a_severity_change_and_a_reopen_keep_the_ticket_version(tmp_path: Path) -> None:
    book = load_policies(renewed(tmp_path))
    opened = RENEWAL - H
    events = [
        open_event("T-1", opened, severity="normal"),
        make_event("ticket.resolved", "T-1", opened + 5 * MIN, {}, event_id="T-1/1"),
        make_event("ticket.reopened", "T-1", RENEWAL + H, {}, event_id="T-1/2"),
        make_event(
            "ticket.severity_changed",
            "T-1",
            RENEWAL + H + MIN,
            {"severity": "high"},
            event_id="T-1/3",
        ),
        RENEWAL + 6 * H,
    ]
    _, outputs = run(book, *events)
    steps = [(o.step, o.time - (RENEWAL + H)) for o in outputs if isinstance(o, Escalation)]
    # v1's high ladder from the reopen's clock start: 0, 2 h, 4 h (v2's would be 0, 1 h).
    assert [s for s, _ in steps] == [1, 2, 3]
    assert steps[1][1] == 2 * H
    assert {o.policy for o in outputs} == {"standard@v1"}


def test_a_customer_on_sydney_business_hours(tmp_path: Path) -> None:
    """Normal/premium is 4 working hours. Opened Friday 2026-03-06 15:00 in Sydney (04:00Z,
    AEDT): two hours that day, two more from Monday 09:00, so due Monday 11:00 AEDT, 00:00Z.
    The same ticket on the seed's 24x7 clock is due at 08:00Z on Friday."""
    book = load_policies(EXAMPLE)
    opened = datetime(2026, 3, 6, 4, 0, tzinfo=UTC)
    until = datetime(2026, 3, 10, tzinfo=UTC)
    sydney = open_event("T-syd", opened, severity="normal", region="apac")
    _, outputs = run(book, sydney, until)
    assert [(o.time, o.policy) for o in outputs if isinstance(o, Breach)] == [
        (datetime(2026, 3, 9, 0, 0, tzinfo=UTC), "apac@2026")
    ]
    _, outputs = run(book, open_event("T-else", opened, severity="normal"), until)
    assert [(o.time, o.policy) for o in outputs if isinstance(o, Breach)] == [
        (opened + 4 * H, "standard@2026")
    ]
    # Urgent tickets of the same customer run 24x7x365: 15 minutes, a Saturday.
    saturday = datetime(2026, 3, 7, 1, 0, tzinfo=UTC)
    _, outputs = run(book, open_event("T-urg", saturday, severity="urgent", region="apac"), until)
    assert [o.time for o in outputs if isinstance(o, Breach)] == [saturday + 15 * MIN]


def test_a_maintenance_keeps_the_version_of_its_first_announcement(tmp_path: Path) -> None:
    book = load_policies(renewed(tmp_path))
    window = {"kind": "planned", "summary": "s", "window_start": "2027-02-01T00:00:00Z",
              "window_end": "2027-02-01T02:00:00Z"}  # fmt: skip
    scheduled = make_event("maintenance.scheduled", "M-1", RENEWAL - H, window, event_id="m0")
    moved = {**window, "window_start": "2027-02-02T00:00:00Z", "window_end": "2027-02-02T02:00:00Z"}
    rescheduled = make_event("maintenance.rescheduled", "M-1", RENEWAL + H, moved, event_id="m1")
    state, outputs = run(book, scheduled, rescheduled)
    assert state is not None
    assert state.policy == "standard@v1"
    assert outputs
    assert {o.policy for o in outputs} == {"standard@v1"}


def test_every_output_names_its_version_on_the_wire(tmp_path: Path) -> None:
    book = load_policies(renewed(tmp_path))
    _, outputs = run(book, open_event("T-1", RENEWAL, severity="urgent"), RENEWAL + 5 * H)
    assert outputs
    assert {output_data(o)["policy"] for o in outputs} == {"standard@v2"}
    _, plain = run(DEFAULT_POLICY, open_event("T-1", RENEWAL, severity="urgent"), RENEWAL + 5 * H)
    assert {output_data(o)["policy"] for o in plain} == {"default@1"}


# -- stored states: the migration story ------------------------------------------------------


def test_a_state_stored_before_versions_is_governed_by_its_clock_start(tmp_path: Path) -> None:
    """A version 4 value has no `policy`: it decodes with "" and is governed by the version of
    the policy its data selects, in force when it opened."""
    state, _ = run(
        DEFAULT_POLICY, open_event("T-1", RENEWAL - H, severity="high", customer_id="c3")
    )
    assert isinstance(state, Ticket)
    values = codec._LAYOUTS["t"].encode(replace(state, policy=""))[:-1]
    raw = codec.orjson.dumps(["t", 4, DEFAULT_POLICY.fingerprint, None, *values])
    decoded = codec.decode_state(raw)
    assert isinstance(decoded, Ticket)
    assert decoded.policy == ""
    assert decoded == replace(state, policy="")
    book = load_policies(renewed(tmp_path))
    assert engine.of(decoded, book).key == "office@v1"  # customer c3's rule
    # Under a key the set no longer has: the same policy name, else the rules.
    assert engine.of(replace(state, policy="standard@gone"), book).key == "standard@v1"
    assert engine.of(replace(state, policy="retired@1"), book).key == "office@v1"
    decision = engine.decide(decoded, make_event("ticket.updated", "T-1", RENEWAL, {},
                                                 event_id="T-1/u"), book)  # fmt: skip
    assert decision.state is not None
    assert decision.state.policy == "office@v1"


def test_adding_a_version_ahead_of_time_keeps_open_tickets_and_their_stored_deadlines(
    tmp_path: Path,
) -> None:
    """A set deployed with v1 only, then with v2 added for a later instant: a ticket opened
    under v1 keeps v1 and its fingerprint, so a restart trusts its stored deadline."""
    v1_only = RENEWED.format(cut="2027-01-01T00:00:00Z")
    v1_only = (
        v1_only[: v1_only.index('[[policies.standard.versions]]\nlabel = "v2"')]
        + (v1_only[v1_only.index("[[policies.office.versions]]") :])
    )
    (tmp_path / "deployed").mkdir()
    only_v1 = write_set(tmp_path / "deployed", v1_only, **{"office.toml": _seed_text() + OFFICE})
    before, after = load_policies(only_v1), load_policies(renewed(tmp_path))
    state, _ = run(before, open_event("T-1", RENEWAL - H, severity="high"))
    assert state is not None
    assert engine.of(state, before).fingerprint in after.fingerprints
    assert engine.of(state, after).key == "standard@v1"
    assert engine.next_deadline(state, after) == engine.next_deadline(state, before)


# -- properties ------------------------------------------------------------------------------


def per_ticket(outputs: list[Output]) -> dict[str, list[Output]]:
    grouped: dict[str, list[Output]] = defaultdict(list)
    for output in outputs:
        grouped[output.subject].append(replace(output, policy=""))  # type: ignore[type-var]
    return dict(grouped)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut_hours=st.integers(0, 14 * 24))
def test_a_ticket_outputs_depend_only_on_the_version_in_force_at_its_clock_start(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cut_hours: int
) -> None:
    """Replayed under the set, each ticket emits exactly what replaying the whole history under
    the plain policy of its version emits for it (the version of its rule's policy in force at
    its `ticket.opened`)."""
    start = datetime(2026, 12, 25, tzinfo=UTC)
    cut = start + timedelta(hours=cut_hours)
    book = load_policies(renewed(tmp_path_factory.mktemp("set"), cut))
    lines = [raw for _, raw in histories(seed, tickets=30, maintenances=3, start=start,
                                         end=start + timedelta(days=14), policy=DEFAULT_POLICY)]  # fmt: skip
    events = [(n, parse_event(raw)) for n, raw in enumerate(lines, start=1)]
    until = start + timedelta(days=16)
    under_set = replay(events, book, until, io.StringIO())
    plain = {
        key: per_ticket(replay(events, version.policy, until, io.StringIO()).outputs)
        for key, version in book.versions.items()
    }
    opened: dict[str, str] = {}
    for _, event in events:
        if event.type == "ticket.opened" and event.subject not in opened:
            data = event.data
            facts = Facts(data.customer_id, data.support_tier, data.contract, data.region)
            opened[event.subject] = book.select(facts, event.time).key
        elif event.type == "maintenance.scheduled" and event.subject not in opened:
            opened[event.subject] = book.in_force(book.maintenance, event.time).key
    got = per_ticket(under_set.outputs)
    for subject, key in opened.items():
        assert got.get(subject, []) == plain[key].get(subject, []), subject
    assert {o.policy for o in under_set.outputs} <= set(book.versions)
    named = {o.subject: o.policy for o in under_set.outputs}
    assert all(named[s] == opened[s] for s in named)


def test_the_seed_document_is_the_default_policy() -> None:
    assert parse_policy(default_document()).fingerprint == DEFAULT_POLICY.fingerprint


def test_the_property_history_spans_every_version(tmp_path: Path) -> None:
    """The histories the property replays put tickets under all three versions (else it would
    compare one policy with itself)."""
    start = datetime(2026, 12, 25, tzinfo=UTC)
    book = load_policies(renewed(tmp_path, start + timedelta(days=7)))
    lines = histories(1, tickets=30, maintenances=3, start=start,
                      end=start + timedelta(days=14), policy=DEFAULT_POLICY)  # fmt: skip
    result = replay(((n, parse_event(raw)) for n, (_, raw) in enumerate(lines)), book,
                    start + timedelta(days=16), io.StringIO())  # fmt: skip
    assert {o.policy for o in result.outputs} == set(book.versions)


def test_holidays_from_an_icalendar_file_stop_the_clock() -> None:
    """Normal/premium, 4 working hours in Sydney. Opened Thursday 2026-04-02 15:00 AEDT (04:00Z):
    two hours that day; Good Friday, the weekend and Easter Monday are holidays in the example's
    .ics; Tuesday 09:00 AEST (daylight saving ended on the 5th) plus two hours is 01:00Z."""
    book = load_policies(EXAMPLE)
    opened = datetime(2026, 4, 2, 4, 0, tzinfo=UTC)
    ticket = open_event("T-easter", opened, severity="normal", region="apac")
    _, outputs = run(book, ticket, datetime(2026, 4, 8, tzinfo=UTC))
    assert [o.time for o in outputs if isinstance(o, Breach)] == [
        datetime(2026, 4, 7, 1, 0, tzinfo=UTC)
    ]


def test_an_unreadable_icalendar_file_names_the_policy_the_calendar_and_the_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.ics").write_text(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2026-12-25\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    policy = _seed_text() + (
        '[calendars.office]\ntimezone = "Europe/London"\nholidays_ical = ["bad.ics"]\n'
        '[calendars.office.weekly]\nmon = ["09:00-17:00"]\n'
    )
    (tmp_path / "office.toml").write_text(policy)
    with pytest.raises(PolicyError) as caught:
        load_policies(tmp_path / "office.toml")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'office.toml'}: calendars.office: holidays_ical: ")
    assert f"{tmp_path / 'bad.ics'}: line 3" in message
    (tmp_path / "office.toml").write_text(policy.replace("bad.ics", "missing.ics"))
    with pytest.raises(PolicyError, match=r"holidays_ical: cannot read .*missing\.ics"):
        load_policies(tmp_path / "office.toml")


def test_the_fingerprint_follows_the_icalendar_file(tmp_path: Path) -> None:
    """A stored deadline depends on the holidays: another file content, another fingerprint."""
    ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:{day}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    (tmp_path / "h.ics").write_text(ics.format(day="20261225"))
    policy = _seed_text() + (
        '[calendars.office]\ntimezone = "Europe/London"\nholidays_ical = ["h.ics"]\n'
        '[calendars.office.weekly]\nmon = ["09:00-17:00"]\n[clocks]\nlow = "office"\n'
    )
    (tmp_path / "p.toml").write_text(policy)
    first = load_policies(tmp_path / "p.toml").versions["default@1"].policy
    assert first.calendars["office"].holidays == frozenset({datetime(2026, 12, 25).date()})
    (tmp_path / "h.ics").write_text(ics.format(day="20261228"))
    second = load_policies(tmp_path / "p.toml").versions["default@1"].policy
    assert first.fingerprint != second.fingerprint


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("region", 5, "data.region: Input should be a valid string"),
        ("contract", "", "data.contract: String should have at least 1 character"),
        ("region", "x" * 300, "data.region: String should have at most 256 characters"),
        ("contract", "a\nb", "data.contract: a control character or line separator"),
    ],
)
def test_a_bad_contract_or_region_is_invalid_data(field: str, value: Any, message: str) -> None:
    """The rules' fields are checked at the edge like the rest of `ticket.opened`: the event
    goes to the dead-letter topic as `invalid_data`, naming the field."""
    raw = to_bytes(envelope("ticket.opened", "T-1", RENEWAL, opened_data(**{field: value})))
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.reason == "invalid_data"
    assert message in str(caught.value)


def test_the_timeline_names_the_version(tmp_path: Path) -> None:
    from processor.sla.timeline import timeline

    book = load_policies(renewed(tmp_path))
    state, _ = run(book, open_event("T-1", RENEWAL, severity="high"))
    assert isinstance(state, Ticket)
    version = engine.of(state, book)
    answer = timeline("T-1", [], 0, state, version.policy, RENEWAL + H)
    assert (answer["policy_version"], answer["policy"]) == (
        "standard@v2",
        version.policy.fingerprint,
    )
