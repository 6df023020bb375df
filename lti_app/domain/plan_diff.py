"""What changed between two versions of a plan: accommodations added, removed and changed.

Identity is the catalogue code when there is one (case-insensitive), otherwise the text with case and spacing
ignored — the same key the importer uses, so an imported plan and an edited one compare alike. "Changed" means
the same identity with a different category, wording, scope (applies to, subjects) or LMS parameter, or a free-text
accommodation reworded (similar wording in the same category: see ``_pair_rewordings``). Order
does not matter: moving an accommodation up the list is not a change teachers need to re-acknowledge.

Pure: works on snapshots, so the teacher panel, the editor and the tests use the same rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from difflib import SequenceMatcher
from typing import Any

from lti_app.domain.catalogue import APPLIES_TO_LABELS, CATEGORY_LABELS

FIELD_LABELS = {"category": "category", "text": "wording", "applies_to": "applies to", "subjects": "subjects",
                "time_multiplier": "time multiplier", "extra_attempts": "extra attempts"}


def normalise_text(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Item:
    """One accommodation as the diff sees it."""

    category: str
    text: str
    applies_to: str = "all"
    subjects: tuple[str, ...] = ()
    time_multiplier: Decimal | None = None
    extra_attempts: int | None = None
    code: str | None = None

    @property
    def key(self) -> str:
        return f"code:{self.code.strip().lower()}" if self.code and self.code.strip() else \
            "text:" + normalise_text(self.text)

    def compared(self) -> dict[str, Any]:
        return {"category": self.category, "text": " ".join(self.text.split()), "applies_to": self.applies_to,
                "subjects": tuple(sorted(s.strip().lower() for s in self.subjects)),
                "time_multiplier": None if self.time_multiplier is None else Decimal(self.time_multiplier).normalize(),
                "extra_attempts": self.extra_attempts}

    @classmethod
    def of(cls, obj: Any) -> Item:
        """From anything shaped like an ``Accommodation`` row."""
        mult = getattr(obj, "time_multiplier", None)
        return cls(category=obj.category, text=obj.text, applies_to=getattr(obj, "applies_to", "all") or "all",
                   subjects=tuple(getattr(obj, "subjects", None) or ()),
                   time_multiplier=None if mult is None else Decimal(mult),
                   extra_attempts=getattr(obj, "extra_attempts", None),
                   code=getattr(obj, "catalogue_code", None) or getattr(obj, "code", None))


def _show(field: str, value: Any) -> str:
    if value is None or value == ():
        return "none" if field != "subjects" else "every subject"
    if field == "category":
        return CATEGORY_LABELS.get(value, value)
    if field == "applies_to":
        return APPLIES_TO_LABELS.get(value, value).lower()
    if field == "subjects":
        return ", ".join(value)
    if field == "time_multiplier":
        return f"{value}x"
    return str(value)


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{FIELD_LABELS[self.field]}: {self.before} → {self.after}"


@dataclass(frozen=True)
class Changed:
    before: Item
    after: Item
    fields: tuple[FieldChange, ...]


@dataclass(frozen=True)
class PlanDiff:
    added: tuple[Item, ...] = ()
    removed: tuple[Item, ...] = ()
    changed: tuple[Changed, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)

    def lines(self) -> list[str]:
        """Plain sentences for a teacher ("Added: …", "Removed: …", "Changed: … (time multiplier: 1.5x → 2x)")."""
        out = [f"Added: {a.text}" for a in self.added]
        out += [f"Changed: {c.after.text} ({'; '.join(str(f) for f in c.fields if f.field != 'text')})"
                if any(f.field != "text" for f in c.fields) else f"Reworded: {c.before.text} → {c.after.text}"
                for c in self.changed]
        out += [f"Removed: {r.text}" for r in self.removed]
        return out


REWORDING_SIMILARITY = 0.5
"""How alike two free-text wordings in one category must be (difflib ratio of the normalised texts) for a removal and
an addition to read as one reworded accommodation. "Seat near the front" -> "Seat at the front, by the board" is 0.64;
unrelated accommodations of one category score about 0.3-0.4."""


def _changed(o: Item, n: Item) -> Changed:
    before_f, after_f = o.compared(), n.compared()
    fields = tuple(FieldChange(name, _show(name, before_f[name]), _show(name, after_f[name]))
                   for name in FIELD_LABELS if before_f[name] != after_f[name])
    return Changed(o, n, fields)


def _pair_rewordings(removed: list[Item], added: list[Item], changed: list[Changed]) -> None:
    """An edited free-text accommodation is one change, not a removal and an addition (issue #13): a leftover removal
    and addition without catalogue codes, in the same category and with similar wording, are paired (the most alike
    first), so teachers read "Reworded: ... -> ..." instead of two lines about what is really one accommodation."""
    candidates = sorted(
        ((SequenceMatcher(None, normalise_text(o.text), normalise_text(n.text)).ratio(), i, j)
         for i, o in enumerate(removed) for j, n in enumerate(added)
         if not o.code and not n.code and o.category == n.category),
        reverse=True)
    used_old: set[int] = set()
    used_new: set[int] = set()
    for ratio, i, j in candidates:
        if ratio < REWORDING_SIMILARITY:
            break
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        changed.append(_changed(removed[i], added[j]))
    removed[:] = [o for i, o in enumerate(removed) if i not in used_old]
    added[:] = [n for j, n in enumerate(added) if j not in used_new]


def diff(before: Iterable[Item], after: Iterable[Item]) -> PlanDiff:
    """Compare two versions' accommodations. Duplicates of one identity are paired in their given order."""
    old: dict[str, list[Item]] = defaultdict(list)
    new: dict[str, list[Item]] = defaultdict(list)
    for item in before:
        old[item.key].append(item)
    for item in after:
        new[item.key].append(item)
    added: list[Item] = []
    removed: list[Item] = []
    changed: list[Changed] = []
    for key in list(old) + [k for k in new if k not in old]:
        olds, news = old.get(key, []), new.get(key, [])
        # Pair exact matches first so that a duplicate does not mask a real change.
        news_left = list(news)
        unmatched_old = []
        for o in olds:
            same = next((n for n in news_left if n.compared() == o.compared()), None)
            if same is not None:
                news_left.remove(same)
            else:
                unmatched_old.append(o)
        for o, n in zip(unmatched_old, news_left, strict=False):
            changed.append(_changed(o, n))
        removed.extend(unmatched_old[len(news_left):])
        added.extend(news_left[len(unmatched_old):])
    _pair_rewordings(removed, added, changed)
    by_text = lambda i: normalise_text(i.text)  # noqa: E731
    return PlanDiff(tuple(sorted(added, key=by_text)), tuple(sorted(removed, key=by_text)),
                    tuple(sorted(changed, key=lambda c: by_text(c.after))))
