"""A small knowledge base with permissions, shared by the indexer and app tests: three folders, nested
.gensearch.yml rules, four users with overlapping groups, and what each may read."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT_RULES = {
    "default": "deny",
    "rules": [{"paths": ["hr/**"], "groups": ["hr"]}, {"paths": ["pub/**", "*.md"], "groups": ["staff", "hr"]}],
}
ENG_RULES = {"rules": [{"paths": ["**"], "groups": ["eng"]}, {"paths": ["secret/*"], "users": ["carol"]}]}
DOCS = {
    "hr/salaries.md": "# Salaries\n\nSalary bands for 2026 are reviewed by the HR team every March.\n",
    "pub/handbook.md": "# Handbook\n\nThe staff handbook explains holidays: every employee gets 25 days of paid leave.\n",
    "welcome.md": "# Welcome\n\nWelcome to the company wiki. Start with the handbook and the engineering pages.\n",
    "eng/deploy.md": "# Deploying\n\nDeploy the service with the release script; roll back with the previous tag.\n",
    "eng/secret/keys.txt": "The production signing keys live in the hardware security module in rack 4.\n",
    "notes.txt": "Unfiled notes that no rule covers: with default deny nobody may read them.\n",
}
USERS = {"alice": ["hr", "staff"], "bob": ["staff"], "carol": ["eng"], "dave": []}
SEES = {  # what each caller may read (relative paths)
    "alice": {"hr/salaries.md", "pub/handbook.md", "welcome.md"},
    "bob": {"pub/handbook.md", "welcome.md"},
    "carol": {"eng/deploy.md", "eng/secret/keys.txt"},
    "dave": set(),
    None: set(),
}


def write_kb(root: Path, root_rules: dict = ROOT_RULES) -> Path:
    """The documents and both rule files under ``root``."""
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / ".gensearch.yml").write_text(yaml.safe_dump(root_rules))
    (root / "eng" / ".gensearch.yml").write_text(yaml.safe_dump(ENG_RULES))
    return root


def write_users(path: Path) -> Path:
    path.write_text(yaml.safe_dump(USERS))
    return path


def relative(sources: list[str], root: Path) -> set[str]:
    """Hit sources as paths relative to the corpus root."""
    return {Path(s).relative_to(root.resolve()).as_posix() for s in sources}
