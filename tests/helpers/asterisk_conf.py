"""Asterisk's `.conf` syntax, read the way Asterisk's own loader reads it.

Why this exists: Asterisk reports most mistakes in a configuration file as one
log line while loading everything else. A `Goto` to a label that does not
exist is only noticed when a caller reaches it, and then the caller is cut off.
The dialplan and manager snippets we ship are parsed with this module in our
tests, so that kind of mistake is found before an admin reloads a PBX, and the
parser is itself tested on the configuration files of the Asterisk 22 lab.

What is covered (main/config.c and pbx/pbx_config.c, as documented and as
observed in the lab files):

- comments: `;` to the end of the line, `\\;` for a literal semicolon, block
  comments `;--` ... `--;` (they nest);
- `[category]`, with the options `(!)` (a template), `(name,...)` (inherit
  from templates) and `(+)` (add to an earlier category of that name);
- `name = value` and `name => value` lines (the first `=` splits; `=>` marks
  what config.c calls an object);
- `#include` / `#tryinclude` with a file name, quoted or not, relative to the
  configuration directory, wildcards allowed; `#exec` is recorded, never run;
- in extensions.conf: contexts, `exten =>`, `same =>`, priorities as numbers,
  `n`, `hint`, labels as `n(label)`, `include =>`, and the targets of
  `Goto`, `GotoIf`, `Gosub` and `GosubIf`.

Everything is returned as frozen values with the file and line it came from,
and problems are collected (never raised), so a check can report all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

NON_CONTEXT_CATEGORIES = frozenset({"general", "globals"})
"""Categories of extensions.conf that are settings, not dialplan contexts."""

HINT_PRIORITY = -1
JUMP_APPLICATIONS = frozenset({"goto", "gotoif", "gosub", "gosubif"})
_DIALPLAN_KEYWORDS = frozenset({"exten", "same", "include", "switch", "lswitch", "eswitch"})
_IGNORED_DIALPLAN_KEYWORDS = frozenset({"ignorepat"})
_NUMBER = re.compile(r"^\d+$")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")
_OPENERS: Mapping[str, str] = MappingProxyType({"(": ")", "[": "]", "{": "}"})


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a configuration file, for messages an admin can act on."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something Asterisk would warn about, ignore, or get wrong."""

    where: Where
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str
    arrow: bool
    """Written `name => value` (an "object" line for config.c)."""
    where: Where


@dataclass(frozen=True, slots=True)
class Include:
    kind: str
    """`include`, `tryinclude` or `exec`."""
    argument: str
    where: Where


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    where: Where
    settings: tuple[Setting, ...] = ()
    template: bool = False
    inherits: tuple[str, ...] = ()
    append: bool = False
    """Written `[name](+)`: adds to the earlier category of the same name."""

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of `name`, in file order (many keys may repeat)."""
        return tuple(s.value for s in self.settings if s.name == name)

    def get(self, name: str) -> str | None:
        """The first value of `name`, as `ast_variable_retrieve` returns it."""
        found = self.values(name)
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class ConfFile:
    """One configuration as Asterisk would load it (includes followed when loaded)."""

    categories: tuple[Category, ...]
    includes: tuple[Include, ...] = ()
    problems: tuple[Problem, ...] = ()
    files: tuple[str, ...] = ()

    def named(self, name: str) -> tuple[Category, ...]:
        return tuple(c for c in self.categories if c.name == name)

    def effective(self) -> tuple[Category, ...]:
        """Categories as Asterisk uses them: templates applied and hidden, `(+)` merged."""
        by_name: dict[str, Category] = {}
        resolved: list[Category] = []
        for category in self.categories:
            if category.append and category.name in by_name:
                earlier = by_name[category.name]
                merged = replace(earlier, settings=earlier.settings + category.settings)
                resolved[resolved.index(earlier)] = merged
                by_name[category.name] = merged
                continue
            inherited: list[Setting] = []
            for parent in category.inherits:
                source = by_name.get(parent)
                if source is not None:
                    inherited.extend(source.settings)
            built = replace(category, settings=tuple(inherited) + category.settings)
            by_name[category.name] = built
            resolved.append(built)
        return tuple(c for c in resolved if not c.template)


# --- reading text -------------------------------------------------------------


def _strip_comments(line: str, depth: int) -> tuple[str, int]:
    """Remove comments from one line; `depth` counts open `;--` block comments."""
    kept: list[str] = []
    index = 0
    while index < len(line):
        if depth > 0:
            if line.startswith("--;", index):
                depth -= 1
                index += 3
            elif line.startswith(";--", index):
                depth += 1
                index += 3
            else:
                index += 1
            continue
        char = line[index]
        if char == "\\" and line.startswith(";", index + 1):
            kept.append(";")
            index += 2
        elif line.startswith(";--", index):
            depth += 1
            index += 3
        elif char == ";":
            break
        else:
            kept.append(char)
            index += 1
    return "".join(kept), depth


Item = Category | Setting | Include | Problem
"""One meaningful line of a file, in order: a header, a setting, a directive, or a problem."""


def _scan(text: str, path: str) -> list[Item]:
    items: list[Item] = []
    depth = 0
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        where = Where(path, number)
        line, depth = _strip_comments(raw, depth)
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            items.append(_parse_header(line, where))
        elif line.startswith("#"):
            items.append(_parse_directive(line, where))
        else:
            items.append(_parse_setting(line, where))
    if depth > 0:
        items.append(Problem(Where(path, len(lines)), "a ';--' block comment is never closed"))
    return items


def _parse_header(text: str, where: Where) -> Category | Problem:
    end = text.find("]")
    if end < 0:
        return Problem(where, f"category header {text!r} has no closing ']'")
    name = text[1:end].strip()
    if not name:
        return Problem(where, "empty category name '[]'")
    rest = text[end + 1 :].strip()
    template = append = False
    inherits: list[str] = []
    if rest:
        if not (rest.startswith("(") and rest.endswith(")")):
            return Problem(where, f"unexpected text after [{name}]: {rest!r}")
        for option in (o.strip() for o in rest[1:-1].split(",")):
            if option == "!":
                template = True
            elif option == "+":
                append = True
            elif option:
                inherits.append(option)
    return Category(name, where, template=template, inherits=tuple(inherits), append=append)


def _parse_directive(text: str, where: Where) -> Include | Problem:
    word, _, argument = text[1:].partition(" ")
    kind = word.strip().lower()
    argument = argument.strip()
    if kind not in ("include", "tryinclude", "exec"):
        return Problem(where, f"unknown directive #{word}")
    if len(argument) >= 2 and argument[0] + argument[-1] in ('""', "<>"):
        argument = argument[1:-1].strip()
    if not argument:
        return Problem(where, f"#{kind} needs a file name")
    return Include(kind, argument, where)


def _parse_setting(text: str, where: Where) -> Setting | Problem:
    name, separator, value = text.partition("=")
    if not separator:
        return Problem(where, f"no '=' in {text!r} (Asterisk ignores the line)")
    arrow = value.startswith(">")
    if arrow:
        value = value[1:]
    name = name.strip()
    if not name:
        return Problem(where, f"no name before '=' in {text!r}")
    return Setting(name, value.strip(), arrow, where)


def _assemble(items: Iterable[Item], files: tuple[str, ...]) -> ConfFile:
    """Group a flat item stream into categories, as config.c does.

    A setting belongs to the category opened last, even when that category was
    opened inside an `#include`d file: config.c goes on filling it after the
    include line, a classic surprise this reproduces.
    """
    categories: list[Category] = []
    includes: list[Include] = []
    problems: list[Problem] = []
    current: Category | None = None
    settings: list[Setting] = []
    for item in items:
        if isinstance(item, Category):
            if current is not None:
                categories.append(replace(current, settings=tuple(settings)))
            problems.extend(_undefined_parents(item, categories))
            current, settings = item, []
        elif isinstance(item, Setting):
            if current is None:
                problems.append(
                    Problem(item.where, f"{item.name!r} is outside any [category] (ignored)")
                )
            else:
                settings.append(item)
        elif isinstance(item, Include):
            includes.append(item)
        else:
            problems.append(item)
    if current is not None:
        categories.append(replace(current, settings=tuple(settings)))
    return ConfFile(tuple(categories), tuple(includes), tuple(problems), files)


def _undefined_parents(category: Category, earlier: Sequence[Category]) -> list[Problem]:
    """config.c looks a parent up among the categories read so far, so a template
    must come before every category that inherits it. Otherwise Asterisk logs
    this and the category fails: for queues.conf, `app_queue declined to load`
    and no queue exists at all (on a reload the old queues stay, untemplated)."""
    known = {c.name for c in earlier}
    return [
        Problem(
            category.where,
            f"Inheritance requested, but category {parent!r} does not exist "
            f"(define [{parent}] before [{category.name}])",
        )
        for parent in category.inherits
        if parent not in known
    ]


def parse_conf(text: str, path: str = "<text>") -> ConfFile:
    """Parse one file's text; `#include` lines are recorded, not followed."""
    return _assemble(_scan(text, path), (path,))


def load_conf(path: Path, config_dir: Path | None = None) -> ConfFile:
    """Read a file and every file it `#include`s, in the order Asterisk reads them.

    Relative include names are looked up in `config_dir` (Asterisk's astetcdir;
    by default the directory of `path`). An `#include` of a missing file is a
    problem; a `#tryinclude` of one is not. Include cycles are reported.
    """
    base = config_dir if config_dir is not None else path.parent
    files: list[str] = []
    items = _expand(path, base, (), files)
    return _assemble(items, tuple(files))


def _expand(path: Path, base: Path, chain: tuple[Path, ...], files: list[str]) -> list[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        return [Problem(Where(str(path), 0), f"cannot read: {error}")]
    files.append(str(path))
    here = (*chain, path.resolve())
    expanded: list[Item] = []
    for item in _scan(text, str(path)):
        expanded.append(item)
        if not isinstance(item, Include) or item.kind == "exec":
            continue
        targets = _include_targets(item.argument, base)
        if not targets and item.kind == "include":
            expanded.append(Problem(item.where, f"#include {item.argument}: no such file"))
        for target in targets:
            if target.resolve() in here:
                expanded.append(Problem(item.where, f"#include {target} makes a cycle"))
            else:
                expanded.extend(_expand(target, base, here, files))
    return expanded


def _include_targets(argument: str, base: Path) -> list[Path]:
    candidate = Path(argument)
    if not candidate.is_absolute():
        candidate = base / candidate
    if any(char in argument for char in "*?["):
        return sorted(candidate.parent.glob(candidate.name))
    return [candidate] if candidate.is_file() else []


# --- splitting application arguments -----------------------------------------------


def split_top_level(text: str, separators: str) -> list[str]:
    """Split at separators that are not inside (), [], ${}, $[] or double quotes.

    This is how Asterisk separates application arguments (`ast_app_separate_args`)
    and how `GotoIf` finds its `?` and `:`, which may also appear inside a
    `$[...]` expression.
    """
    parts: list[str] = []
    closers: list[str] = []
    quoted = False
    start = 0
    for index, char in enumerate(text):
        if char == '"' and (index == 0 or text[index - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif char in _OPENERS:
            closers.append(_OPENERS[char])
        elif closers and char == closers[-1]:
            closers.pop()
        elif not closers and char in separators:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def split_arguments(data: str) -> list[str]:
    """An application's argument string as the list of its arguments."""
    return [part.strip() for part in split_top_level(data, ",")]


# --- the dialplan ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One priority of one extension: what Asterisk runs there."""

    context: str
    exten: str
    priority: int
    label: str | None
    application: str
    data: str
    where: Where


@dataclass(frozen=True, slots=True)
class Context:
    name: str
    where: Where
    extensions: Mapping[str, Mapping[int, Step]]
    includes: tuple[str, ...] = ()

    def steps(self) -> Iterator[Step]:
        for priorities in self.extensions.values():
            yield from (priorities[p] for p in sorted(priorities))


@dataclass(frozen=True, slots=True)
class Target:
    """Where a Goto/Gosub sends the call, as written (before any lookup)."""

    context: str
    exten: str
    priority: str
    source: Step

    @property
    def dynamic(self) -> bool:
        """Built from variables at run time, so it cannot be checked statically."""
        return any("$" in part for part in (self.context, self.exten, self.priority))

    def __str__(self) -> str:
        return f"{self.context},{self.exten},{self.priority}"


@dataclass(frozen=True, slots=True)
class Dialplan:
    contexts: Mapping[str, Context]
    problems: tuple[Problem, ...]

    def steps(self) -> Iterator[Step]:
        for context in self.contexts.values():
            yield from context.steps()

    def applications(self, name: str) -> list[Step]:
        """Every step running application `name` (case-insensitive, as in Asterisk)."""
        wanted = name.lower()
        return [step for step in self.steps() if step.application.lower() == wanted]

    def targets(self) -> list[Target]:
        return [target for step in self.steps() for target in jump_targets(step)]

    def check_targets(self) -> list[Problem]:
        """A problem for every static Goto/Gosub target that does not exist."""
        found: list[Problem] = []
        for target in self.targets():
            if target.dynamic:
                continue
            reason = self.missing(target)
            if reason:
                found.append(Problem(target.source.where, f"{target.source.application}: {reason}"))
        return found

    def missing(self, target: Target) -> str | None:
        """Why `target` cannot be reached, or None when it exists."""
        context = self.contexts.get(target.context)
        if context is None:
            return f"context [{target.context}] does not exist"
        priorities = self.find_extension(target.context, target.exten)
        if priorities is None:
            return f"extension {target.exten!r} does not exist in [{target.context}]"
        if _NUMBER.match(target.priority):
            if int(target.priority) not in priorities:
                return f"priority {target.priority} of {target.exten}@{target.context} missing"
            return None
        if not any(step.label == target.priority for step in priorities.values()):
            return f"label {target.priority!r} not found in {target.exten}@{target.context}"
        return None

    def find_extension(self, context: str, exten: str) -> Mapping[int, Step] | None:
        """The extension `exten` runs in `context`: literal first, then patterns, then includes."""
        return self._find(context, exten, frozenset())

    def _find(self, name: str, exten: str, seen: frozenset[str]) -> Mapping[int, Step] | None:
        context = self.contexts.get(name)
        if context is None or name in seen:
            return None
        if exten in context.extensions:
            return context.extensions[exten]
        for candidate, priorities in context.extensions.items():
            if candidate.startswith("_") and pattern_matches(candidate, exten):
                return priorities
        for included in context.includes:
            found = self._find(included, exten, seen | {name})
            if found is not None:
                return found
        return None


def pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk's extension pattern match (`_` prefix: X, Z, N, [set], `.`, `!`)."""
    return re.fullmatch(_pattern_regex(pattern), exten.replace("-", "")) is not None


def _pattern_regex(pattern: str) -> str:
    body = pattern[1:] if pattern.startswith("_") else pattern
    parts: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "[":
            end = body.find("]", index)
            if end < 0:
                return re.escape(body)
            parts.append("[" + body[index + 1 : end].replace("\\", "\\\\") + "]")
            index = end + 1
            continue
        if char == "-":  # dashes outside [] only make numbers readable: 555-1212
            index += 1
            continue
        parts.append(
            {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(
                char.upper() if char in "xzn" else char, re.escape(char)
            )
        )
        index += 1
    return "".join(parts)


@dataclass
class _ContextBuilder:
    name: str
    where: Where
    extensions: dict[str, dict[int, Step]] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


@dataclass
class _Cursor:
    """pbx_config's memory of the previous line: `same` and `n` continue from it."""

    exten: str | None = None
    priority: int | None = None


def build_dialplan(conf: ConfFile) -> Dialplan:
    """The contexts of an extensions.conf, with a problem for each line Asterisk would reject."""
    problems = list(conf.problems)
    contexts: dict[str, _ContextBuilder] = {}
    for category in conf.effective():
        if category.name.lower() in NON_CONTEXT_CATEGORIES:
            continue
        context = contexts.setdefault(category.name, _ContextBuilder(category.name, category.where))
        cursor = _Cursor()
        for setting in category.settings:
            keyword = setting.name.lower()
            if keyword in ("exten", "same"):
                _add_step(context, setting, keyword == "same", cursor, problems)
            elif keyword == "include":
                context.includes.append(setting.value.split(",", 1)[0].strip())
            elif keyword in _DIALPLAN_KEYWORDS or keyword in _IGNORED_DIALPLAN_KEYWORDS:
                continue
            else:
                problems.append(
                    Problem(setting.where, f"{setting.name!r} is not a dialplan line in a context")
                )
    built = {
        name: Context(
            name,
            context.where,
            {exten: dict(steps) for exten, steps in context.extensions.items()},
            tuple(context.includes),
        )
        for name, context in contexts.items()
    }
    for made in built.values():
        for exten, priorities in made.extensions.items():
            if 1 not in priorities and any(p != HINT_PRIORITY for p in priorities):
                first = min(priorities.values(), key=lambda s: s.where.line)
                problems.append(
                    Problem(first.where, f"{exten}@{made.name} has no priority 1: never runs")
                )
    return Dialplan(built, tuple(problems))


def _add_step(
    context: _ContextBuilder,
    setting: Setting,
    same: bool,
    cursor: _Cursor,
    problems: list[Problem],
) -> None:
    where = setting.where
    if same:
        if cursor.exten is None:
            problems.append(Problem(where, "'same =>' before any 'exten =>' in this context"))
            return
        exten = cursor.exten
        rest = setting.value
    else:
        parts = split_top_level(setting.value, ",")
        exten = parts[0].strip()
        rest = ",".join(parts[1:])
        if not exten or len(parts) < 2:
            problems.append(Problem(where, f"'exten => {setting.value}' needs exten,priority,app"))
            return
        exten = exten.split("/", 1)[0].strip()  # a caller-id match: exten/cid
    priority_text, _, application_text = rest.partition(",")
    priority_text = priority_text.strip()
    label: str | None = None
    if "(" in priority_text:
        priority_text, _, label_text = priority_text.partition("(")
        label = label_text.rstrip(")").strip()
        priority_text = priority_text.strip()
        if not label or not _LABEL.match(label):
            problems.append(Problem(where, f"bad label {label_text!r}"))
            return
    priority = _priority(priority_text, exten, cursor, where, problems)
    if priority is None:
        return
    cursor.exten, cursor.priority = exten, priority
    application, data = _application(application_text.strip(), where, problems)
    priorities = context.extensions.setdefault(exten, {})
    if priority in priorities:
        problems.append(
            Problem(where, f"priority {priority} of {exten}@{context.name} is defined twice")
        )
        return
    if label is not None and any(step.label == label for step in priorities.values()):
        problems.append(Problem(where, f"label {label!r} is used twice in {exten}@{context.name}"))
        return
    priorities[priority] = Step(context.name, exten, priority, label, application, data, where)


def _priority(
    text: str, exten: str, cursor: _Cursor, where: Where, problems: list[Problem]
) -> int | None:
    lowered = text.lower()
    if lowered == "hint":
        return HINT_PRIORITY
    if lowered in ("n", "next"):
        if cursor.priority is None or cursor.priority == HINT_PRIORITY:
            problems.append(Problem(where, "priority 'n' with no numbered priority before it"))
            return None
        if cursor.exten != exten:
            problems.append(
                Problem(
                    where,
                    f"priority 'n' on a new extension {exten!r}: Asterisk would continue "
                    f"{cursor.exten!r}'s numbering, so {exten!r} gets no priority 1",
                )
            )
            return None
        return cursor.priority + 1
    if lowered in ("s", "same"):
        if cursor.priority is None:
            problems.append(Problem(where, "priority 'same' with no priority before it"))
            return None
        return cursor.priority
    if _NUMBER.match(text) and int(text) > 0:
        return int(text)
    problems.append(Problem(where, f"priority {text!r} is not a number, 'n' or 'hint'"))
    return None


def _application(text: str, where: Where, problems: list[Problem]) -> tuple[str, str]:
    if not text:
        problems.append(Problem(where, "no application after the priority"))
        return "", ""
    if "(" in text:
        name, _, data = text.partition("(")
        if not data.endswith(")"):
            problems.append(Problem(where, f"{name.strip()}( has no closing parenthesis"))
            return name.strip(), data
        return name.strip(), data[:-1]
    name, _, data = text.partition(",")
    return name.strip(), data.strip()


# --- jump targets ------------------------------------------------------------------


def jump_targets(step: Step) -> list[Target]:
    """Every place `step` may send the call to (Goto, GotoIf, Gosub, GosubIf)."""
    kind = step.application.lower()
    if kind not in JUMP_APPLICATIONS:
        return []
    if kind in ("goto", "gosub"):
        destinations = [step.data]
    else:
        condition_and_rest = split_top_level(step.data, "?")
        if len(condition_and_rest) < 2:
            return []
        rest = "?".join(condition_and_rest[1:])
        destinations = [d for d in split_top_level(rest, ":") if d.strip()]
    targets = []
    for destination in destinations:
        target = _destination(destination, step, gosub=kind.startswith("gosub"))
        if target is not None:
            targets.append(target)
    return targets


def _destination(text: str, step: Step, *, gosub: bool) -> Target | None:
    parts = split_arguments(text)
    if gosub and parts:
        last = parts[-1]
        if last.endswith(")") and "(" in last:
            parts[-1] = last[: last.index("(")].strip()
    if not parts or not parts[-1]:
        return None
    if len(parts) == 1:
        return Target(step.context, step.exten, parts[0], step)
    if len(parts) == 2:
        return Target(step.context, parts[0], parts[1], step)
    return Target(parts[0], parts[1], parts[2], step)


# --- manager.conf --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilter:
    """One `eventfilter` line: the advanced syntax or the legacy regular expression."""

    exclude: bool
    event_name: str | None
    header: str | None
    method: str | None
    expression: str
    where: Where


def event_filters(category: Category) -> tuple[EventFilter, ...]:
    """A manager.conf account's event filters, both syntaxes.

    Advanced (Asterisk 18.26, 20.11, 21.6, 22.1 and later):
    `eventfilter(action(exclude),name(VarSet)) =`. Legacy: `eventfilter = !regex`,
    a regular expression over the whole event (a leading `!` excludes).
    """
    found: list[EventFilter] = []
    for setting in category.settings:
        if setting.name == "eventfilter":
            exclude = setting.value.startswith("!")
            expression = setting.value[1:] if exclude else setting.value
            found.append(EventFilter(exclude, None, None, None, expression, setting.where))
            continue
        if not setting.name.startswith("eventfilter(") or not setting.name.endswith(")"):
            continue
        criteria = _criteria(setting.name[len("eventfilter(") : -1])
        found.append(
            EventFilter(
                exclude=criteria.get("action", "include") == "exclude",
                event_name=criteria.get("name"),
                header=criteria.get("header"),
                method=criteria.get("method"),
                expression=setting.value,
                where=setting.where,
            )
        )
    return tuple(found)


def _criteria(text: str) -> dict[str, str]:
    criteria: dict[str, str] = {}
    for part in split_arguments(text):
        key, _, value = part.partition("(")
        criteria[key.strip().lower()] = value.rstrip(")").strip()
    return criteria


def excluded_event_names(filters: Iterable[EventFilter]) -> frozenset[str]:
    """Event names an account never receives because a filter excludes them by name.

    Advanced `name(X)` excludes with no header and no expression drop every X.
    Legacy `!Event: X` regular expressions are read the same way when they are
    that simple; anything cleverer is not interpreted.
    """
    names: set[str] = set()
    for item in filters:
        if not item.exclude:
            continue
        if item.event_name and not item.header and not item.expression:
            names.add(item.event_name)
        elif item.event_name is None:
            match = re.fullmatch(r"\^?Event: ([A-Za-z0-9]+)(?:\\r)?\$?", item.expression)
            if match:
                names.add(match.group(1))
    return frozenset(names)


def classes(value: str | None) -> frozenset[str]:
    """A `read =`/`write =` value as a set of class names (lower case)."""
    if not value:
        return frozenset()
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def resolve_variable(dialplan: Dialplan, name: str) -> tuple[str, ...]:
    """Values a dialplan gives variable `name` with literal `Set(name=value)` steps."""
    values: list[str] = []
    for step in dialplan.applications("set"):
        key, separator, value = step.data.partition("=")
        if separator and key.strip() == name:
            values.append(value.strip())
    return tuple(values)
