"""Who may read each document: ``.gensearch.yml`` rules in the corpus folders, principals from a users file.

A ``.gensearch.yml`` in any folder of a corpus holds rules for that folder and below; paths are globs
relative to it (``*`` stays inside one folder, ``**`` crosses folders); over all files, shallow before
deep, the last matching rule wins. ``default`` (root file only) is ``deny`` or ``public`` and overrides
every other default (``Settings.access_default``, what the collection recorded; see ``corpora``)::

    default: deny
    rules:
      - paths: ["hr/**"]
        groups: [hr]
      - paths: ["pub/**"]
        groups: [staff, hr]
        users: [carol]

Every chunk stores its document's readers as payload tokens (``readers``, keyword-indexed): ``*`` for
public, ``group:<g>`` / ``user:<u>``, or ``-`` (nobody) for a denied document. A caller's principals are
``*`` plus their own tokens (``Principal``), and every read path filters on them inside the Qdrant query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml

ACL_FILE = ".gensearch.yml"
PUBLIC = "*"
NOBODY = "-"  # readers of a denied document: matches no principal (and keeps the field non-empty)

Access = Literal["deny", "public"]


class PermissionsError(ValueError):
    """A ``.gensearch.yml`` or users file that cannot be used, or an unknown user."""


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``**`` any number of folders, ``*`` and ``?`` within one path part."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(path: str, pattern: str) -> bool:
    """Whether the POSIX relative ``path`` matches ``pattern`` (see ``glob_regex``)."""
    return glob_regex(pattern).match(path) is not None


@dataclass(frozen=True)
class Rule:
    folder: str  # where its .gensearch.yml sits, relative to the corpus root ("" for the root)
    paths: tuple[str, ...]
    readers: tuple[str, ...]  # group:<g> / user:<u> tokens

    def matches(self, path: str) -> bool:
        if self.folder and not path.startswith(self.folder + "/"):
            return False
        relative = path[len(self.folder) + 1 :] if self.folder else path
        return any(glob_match(relative, pattern) for pattern in self.paths)


@dataclass(frozen=True)
class Policy:
    """The rules of one corpus; ``readers(path)`` for each document.

    ``files`` are the rules files that say something (a rule or a default), relative to the root; ``root_default``
    is the root file's own ``default``, if it sets one (an explicit choice that beats every other default)."""

    default: Access = "public"
    rules: tuple[Rule, ...] = ()
    files: tuple[str, ...] = ()
    root_default: Access | None = None

    def readers(self, path: str) -> tuple[str, ...]:
        """Reader tokens of the document at ``path`` (POSIX, relative to the root): the last matching rule's."""
        for rule in reversed(self.rules):
            if rule.matches(path):
                return rule.readers or (NOBODY,)
        return (PUBLIC,) if self.default == "public" else (NOBODY,)


def _strings(value: object, what: str, where: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PermissionsError(f"{where}: {what} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def normalise_pattern(pattern: str, where: Path) -> str:
    """A rule path as the matcher reads it: relative to the rule file's folder, ``/`` separated.

    ``/hr/**`` and ``./hr/**`` (anchored, as in .gitignore) mean ``hr/**``; a trailing ``/`` means the
    folder and everything below it (``hr/`` is ``hr/**``). ``..`` cannot reach outside the folder and
    backslashes are not separators, so both are errors rather than rules that silently match nothing."""
    original = pattern
    if "\\" in pattern:
        raise PermissionsError(f"{where}: path {original!r}: use '/' between folders, not '\\'")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        pattern = pattern.rstrip("/") + "/**"
    parts = pattern.split("/")
    if ".." in parts:
        raise PermissionsError(f"{where}: path {original!r}: '..' is not allowed; a rule covers its own folder and below")
    pattern = "/".join(part for part in parts if part not in ("", "."))
    if not pattern:
        raise PermissionsError(f"{where}: path {original!r} names no file; use '**' for everything in the folder")
    return pattern


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PermissionsError(f"{path}: cannot read it as YAML ({exc})") from exc


def parse_acl_file(path: Path, folder: str, is_root: bool) -> tuple[Access | None, list[Rule]]:
    """The ``default`` (root only) and rules of one ``.gensearch.yml``; PermissionsError on anything unclear."""
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise PermissionsError(f"{path}: expected a mapping with 'rules' (and 'default' in the root file)")
    unknown = set(data) - {"default", "rules"}
    if unknown:
        raise PermissionsError(f"{path}: unknown keys {sorted(unknown)}; use 'default' and 'rules'")
    default = data.get("default")
    if default is not None and not is_root:
        raise PermissionsError(f"{path}: 'default' is allowed only in the corpus root's {ACL_FILE}")
    if default not in (None, "deny", "public"):
        raise PermissionsError(f"{path}: default must be 'deny' or 'public', not {default!r}")
    rules = []
    for n, entry in enumerate(data.get("rules") or [], start=1):
        if not isinstance(entry, dict) or set(entry) - {"paths", "groups", "users"} or "paths" not in entry:
            raise PermissionsError(f"{path}: rule {n} needs 'paths' and may have 'groups' and 'users', nothing else")
        readers = [f"group:{g}" for g in _strings(entry.get("groups"), "groups", path)]
        readers += [f"user:{u}" for u in _strings(entry.get("users"), "users", path)]
        patterns = tuple(normalise_pattern(pattern, path) for pattern in _strings(entry["paths"], "paths", path))
        rules.append(Rule(folder, patterns, tuple(readers)))
    return default, rules


def acl_files(root: Path) -> list[Path]:
    """Every ``.gensearch.yml`` under ``root`` (hidden folders skipped), shallow files first."""
    files = (p for p in root.rglob(ACL_FILE) if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]))
    return sorted(files, key=lambda p: (len(p.relative_to(root).parts), str(p)))


def load_policy(root: str | Path, default: Access | None = None) -> Policy:
    """Every ``.gensearch.yml`` under ``root``, shallow files first.

    Where no rule matches, a document gets the root file's ``default``, else ``default``, else (None) ``deny``
    when the corpus has rules and ``public`` when it has none: a folder with permissions fails closed."""
    root = Path(root)
    rules: list[Rule] = []
    files: list[str] = []
    root_default: Access | None = None
    for path in acl_files(root):
        folder = path.parent.relative_to(root).as_posix()
        folder = "" if folder == "." else folder
        file_default, file_rules = parse_acl_file(path, folder, is_root=not folder)
        root_default = file_default or root_default
        rules += file_rules
        if file_default or file_rules:
            files.append(path.relative_to(root).as_posix())
    fallback = default or ("deny" if files else "public")
    return Policy(root_default or fallback, tuple(rules), tuple(files), root_default)


def relative_path(source: str, root: str) -> str:
    """A document's path relative to its corpus root, POSIX style (the form rules and filters use)."""
    try:
        return PurePosixPath(Path(source).relative_to(root).as_posix()).as_posix()
    except ValueError:
        return Path(source).name


@dataclass(frozen=True)
class Principal:
    """A caller: a user and their groups. ``anonymous()`` sees public documents only."""

    user: str | None = None
    groups: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls()

    @property
    def tokens(self) -> list[str]:
        """The reader tokens this caller matches: ``*``, ``user:<u>``, ``group:<g>``..."""
        own = [f"user:{self.user}"] if self.user else []
        return [PUBLIC, *own, *(f"group:{g}" for g in self.groups)]


def load_users(path: str | Path) -> dict[str, tuple[str, ...]]:
    """The users file: a YAML mapping of user name to their groups (``alice: [hr, staff]``)."""
    path = Path(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise PermissionsError(f"{path}: expected a mapping of user name to a list of groups")
    return {str(user): _strings(groups, f"groups of {user}", path) for user, groups in data.items()}


def principal_for(user: str | None, users_file: str | Path | None) -> Principal:
    """The principal of ``user`` from the users file; anonymous when no user is given.

    An unknown user, or a user named without a users file, is an error, never "public"."""
    if user is None:
        return Principal.anonymous()
    if users_file is None:
        raise PermissionsError(f"cannot search as {user!r}: no users file is set (GENSEARCH_USERS_FILE)")
    users = load_users(users_file)
    if user not in users:
        raise PermissionsError(f"unknown user {user!r}: not in {users_file}")
    return Principal(user, users[user])
