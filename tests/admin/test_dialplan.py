"""The shipped dialplan, queues and manager snippets are well-formed and agree with the service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.admin.check_ami import FILTERED_EVENTS, NEEDED_CLASSES
from ivr.admin.prompts import load_catalog
from ivr.config.settings import AgiConfig
from ivr.config.values import AmiConfig
from tests.helpers.asterisk_conf import (
    Dialplan,
    Step,
    build_dialplan,
    classes,
    event_filters,
    excluded_event_names,
    load_conf,
    resolve_variable,
    split_arguments,
)

REPO = Path(__file__).resolve().parents[2]
DIALPLAN = REPO / "dialplan"
SURVEY_ROUTE = "nps"

TRACKER_EVENTS = frozenset(
    {
        "QueueCallerJoin",
        "QueueCallerAbandon",
        "AgentCalled",
        "AgentConnect",
        "AgentComplete",
        "BridgeEnter",
        "BridgeLeave",
        "BlindTransfer",
        "AttendedTransfer",
        "DialBegin",
        "Hangup",
        "Rename",
        "FullyBooted",
        "Shutdown",
        "QueueMemberStatus",
        "QueueMemberAdded",
        "QueueMemberPause",
        "QueueMemberPenalty",
        "QueueMemberRemoved",
    }
)
"""Events the tracker (ivr/core/call*.py) reads by name; the filters must never drop one."""


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Dialplan:
    """Our two extensions files, #included from an extensions.conf the way the README says."""
    etc = tmp_path_factory.mktemp("etc-asterisk")
    for name in ("extensions-ivr-survey.conf", "extensions-ivr-survey-examples.conf"):
        (etc / name).write_text((DIALPLAN / name).read_text(encoding="utf-8"), encoding="utf-8")
    (etc / "extensions.conf").write_text(
        "[general]\nstatic = yes\n[globals]\n"
        "#include extensions-ivr-survey.conf\n#include extensions-ivr-survey-examples.conf\n"
    )
    return build_dialplan(load_conf(etc / "extensions.conf"))


def test_every_shipped_conf_file_parses_without_problems() -> None:
    """Each file of dialplan/ loads as Asterisk would load it, with nothing ignored or rejected."""
    files = sorted(DIALPLAN.glob("*.conf"))
    assert 4 == len(files)
    assert [] == [str(p) for f in files for p in load_conf(f).problems]


def test_dialplan_is_well_formed_and_every_jump_target_exists(plan: Dialplan) -> None:
    """No malformed line, and every Goto/GotoIf/Gosub lands on an existing extension and label.

    Asterisk only finds a bad target when a caller reaches it, and then hangs up.
    """
    assert () == plan.problems
    assert [] == [str(p) for p in plan.check_targets()]
    assert [] == [str(t) for t in plan.targets() if t.dynamic]


def survey_agi(plan: Dialplan) -> Step:
    calls = plan.applications("AGI")
    assert 1 == len(calls), "exactly one hand-over to the service: [ivr-survey] s"
    return calls[0]


def test_agi_url_and_port_are_the_service_defaults(plan: Dialplan) -> None:
    """The default AGI URL reaches the service as configured by default: host, port, route nps."""
    agi = survey_agi(plan)
    url_variable = split_arguments(agi.data)[0]
    assert "${IVR_SURVEY_AGI_URL}" == url_variable
    defaults = AgiConfig()
    expected = (f"agi://{defaults.host}:{defaults.port}/{SURVEY_ROUTE}",)
    assert expected == resolve_variable(plan, "IVR_SURVEY_AGI_URL")


def test_linkedid_is_always_the_first_agi_argument_and_extras_are_key_value(
    plan: Dialplan,
) -> None:
    """agi_arg_1 is the Linkedid; the others are the documented key=value pairs."""
    arguments = split_arguments(survey_agi(plan).data)[1:]
    assert "${CHANNEL(linkedid)}" == arguments[0]
    expected = [
        "optin=${IVR_SURVEY_OPTIN}",
        "initiated=${IVR_SURVEY_INITIATED}",
        "key=${IVR_SURVEY_AGI_KEY}",
    ]
    assert expected == arguments[1:]


def test_survey_context_keeps_hangup_notices_and_bounds_the_channel(plan: Dialplan) -> None:
    """AGISIGHUP stays on, the absolute timeout is set before the AGI, and it ends in Hangup."""
    steps = list(plan.contexts["ivr-survey"].extensions["s"].values())
    sets = [s.data for s in steps if s.application == "Set"]
    assert "AGISIGHUP=yes" in sets
    assert "TIMEOUT(absolute)=${IVR_SURVEY_MAX_SECONDS}" in sets
    agi_at = next(s.priority for s in steps if s.application == "AGI")
    assert all(s.priority < agi_at for s in steps if s.data.startswith("TIMEOUT("))
    assert "Hangup" == steps[-1].application
    assert "T" in plan.contexts["ivr-survey"].extensions


def test_failure_plays_goodbye_and_hangs_up_without_waiting(plan: Dialplan) -> None:
    """On AGISTATUS=FAILURE: the goodbye prompt, then Hangup; nothing waits or loops."""
    extension = plan.contexts["ivr-survey"].extensions["s"]
    start = next(s.priority for s in extension.values() if s.label == "unavailable")
    tail = [(s.application, s.data) for p, s in sorted(extension.items()) if p > start]
    assert [("Playback", "ivr-survey/goodbye"), ("Hangup", "")] == tail
    waits = {"wait", "waitexten", "read", "background", "musiconhold"}
    assert not [s for s in extension.values() if s.application.lower() in waits]


def test_queue_recipes_continue_with_option_c_and_never_use_f(plan: Dialplan) -> None:
    """Queue option c sends the caller on to the survey; F() would send the agent's leg."""
    queues = plan.applications("Queue")
    assert queues
    for step in queues:
        options = split_arguments(step.data)[1]
        assert "c" in options, step.where
        assert "F" not in options, step.where


def test_direct_dial_recipes_continue_with_option_g(plan: Dialplan) -> None:
    """Dial option g continues in the dialplan when the agent hangs up."""
    dials = plan.applications("Dial")
    assert dials
    assert all("g" in split_arguments(step.data)[2] for step in dials)


def test_every_prompt_the_dialplan_plays_is_in_the_prompt_catalog(plan: Dialplan) -> None:
    """Playback/Read prompts exist in prompts.toml (used_by dialplan), so builds include them."""
    played = {s.data.split(",")[0] for s in plan.applications("Playback")}
    played |= {split_arguments(s.data)[1] for s in plan.applications("Read")}
    dialplan_prompts = {p.name for p in load_catalog().used_by("dialplan")}
    assert played == dialplan_prompts


def test_opt_in_and_agent_entries_pass_their_choice_to_the_service(plan: Dialplan) -> None:
    """The opt-in sets IVR_SURVEY_OPTIN=1; the agent entry sets IVR_SURVEY_INITIATED=agent."""
    assert "1" in resolve_variable(plan, "IVR_SURVEY_OPTIN")
    assert ("agent",) == resolve_variable(plan, "IVR_SURVEY_INITIATED")
    agent_entry = plan.contexts["ivr-survey"].extensions["agent"]
    assert "Goto" == agent_entry[max(agent_entry)].application


@pytest.fixture(scope="module")
def account() -> dict[str, object]:
    conf = load_conf(DIALPLAN / "manager-ivr-survey.conf")
    users = conf.effective()
    assert ["ivr-survey"] == [c.name for c in users]
    user = users[0]
    return {
        "name": user.name,
        "read": classes(user.get("read")),
        "write": classes(user.get("write")),
        "excluded": excluded_event_names(event_filters(user)),
        "deny": user.values("deny"),
        "permit": user.values("permit"),
    }


def test_manager_account_reads_exactly_the_classes_the_service_uses(
    account: dict[str, object],
) -> None:
    """read = agent,call,system; no write class; the name is the service's default username."""
    assert NEEDED_CLASSES == account["read"]
    assert frozenset() == account["write"]
    assert AmiConfig().username == account["name"]


def test_manager_account_is_limited_to_the_service_host(account: dict[str, object]) -> None:
    """Everything is denied first, then one host is permitted."""
    assert ("0.0.0.0/0.0.0.0",) == account["deny"]
    assert ("127.0.0.1/255.255.255.255",) == account["permit"]


def test_event_filters_drop_only_events_the_service_never_reads(
    account: dict[str, object],
) -> None:
    """The filters are the list `check` warns about, and none hides an event the tracker needs."""
    assert FILTERED_EVENTS == account["excluded"]
    assert frozenset() == FILTERED_EVENTS & TRACKER_EVENTS


def test_tracker_event_list_is_current() -> None:
    """Every event this test protects is still read by name in the tracker (ivr/core/call*.py)."""
    modules = sorted((REPO / "ivr" / "core").glob("call*.py"))
    assert REPO / "ivr" / "core" / "calls.py" in modules
    source = "\n".join(module.read_text(encoding="utf-8") for module in modules)
    assert [] == sorted(e for e in TRACKER_EVENTS if f'"{e}"' not in source)


def test_legacy_filters_for_older_asterisk_name_the_same_events() -> None:
    """The legacy block (Asterisk 20 before 20.11) drops the same events of the classes read."""
    text = (DIALPLAN / "manager-ivr-survey.conf").read_text(encoding="utf-8")
    legacy = set(re.findall(r"^; eventfilter = !Event: (\w+)$", text, flags=re.MULTILINE))
    not_read = {"VarSet", "Newexten", "AGIExecStart", "AGIExecEnd", "Cdr"}
    assert FILTERED_EVENTS - not_read == legacy


def test_queue_template_sets_the_variables_the_service_falls_back_on() -> None:
    """setinterfacevar and setqueuevar are on in the template every surveyed queue inherits."""
    conf = load_conf(DIALPLAN / "queues-ivr-survey.conf")
    template = conf.named("ivr-survey-queue")[0]
    assert template.template
    assert ("yes", "yes") == (template.get("setinterfacevar"), template.get("setqueuevar"))


QUEUES_CONF_HEAD = "[general]\npersistentmembers = yes\n"
A_QUEUE = "[support](ivr-survey-queue)\nstrategy = ringall\nmember => PJSIP/2001,0,Agent One\n"


def test_queues_conf_assembled_as_the_readme_says_gives_each_queue_the_template(
    tmp_path: Path,
) -> None:
    """The include directly above the first queue: no problem, and the queue has the
    template's settings (what step 1 of dialplan/README.md says to write)."""
    (tmp_path / "queues-ivr-survey.conf").write_bytes(
        (DIALPLAN / "queues-ivr-survey.conf").read_bytes()
    )
    (tmp_path / "queues.conf").write_text(
        QUEUES_CONF_HEAD + "#include queues-ivr-survey.conf\n" + A_QUEUE, encoding="utf-8"
    )
    conf = load_conf(tmp_path / "queues.conf")
    support = {c.name: c for c in conf.effective()}["support"]
    assert ([], "yes", "ringall") == (
        [str(p) for p in conf.problems],
        support.get("setinterfacevar"),
        support.get("strategy"),
    )
    assert "**before your first queue**" in (DIALPLAN / "README.md").read_text(encoding="utf-8")


def test_the_template_included_after_the_queues_is_asterisks_inheritance_error(
    tmp_path: Path,
) -> None:
    """Included at the end of queues.conf, the template comes after the queue that
    inherits it: the checker says what Asterisk logs before app_queue declines to load."""
    (tmp_path / "queues-ivr-survey.conf").write_bytes(
        (DIALPLAN / "queues-ivr-survey.conf").read_bytes()
    )
    (tmp_path / "queues.conf").write_text(
        QUEUES_CONF_HEAD + A_QUEUE + "#include queues-ivr-survey.conf\n", encoding="utf-8"
    )
    conf = load_conf(tmp_path / "queues.conf")
    expected = [
        f"{tmp_path / 'queues.conf'}:3: Inheritance requested, but category "
        "'ivr-survey-queue' does not exist (define [ivr-survey-queue] before [support])"
    ]
    assert expected == [str(p) for p in conf.problems]
