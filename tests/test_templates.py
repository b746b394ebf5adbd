"""Rules every template keeps, read from the template files."""

from __future__ import annotations

import re

from tests.conftest import ROOT

TEMPLATES = ROOT / "booking" / "templates"
# Danger buttons that already sit behind a second step (a folded section with a reason) or
# that decide a request rather than destroy anything.
TWO_STEP = {("billing/invoice.html", 2), ("operate/approvals.html", 1), ("operate/grants.html", 1)}


def test_every_destructive_button_asks_first():
    """#16: revoke, remove, retire and cancel ask before they act (app.js reads data-confirm)."""
    unasked = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = str(path.relative_to(TEMPLATES))
        text = path.read_text()
        calls = re.findall(r"post_button\(([^\n]*?)\) \}\}", text)
        unasked += [(name, c) for c in calls if "'danger'" in c and "'danger', _(" not in c]
        forms = re.findall(r"<form[^>]*>(?:(?!</form>).)*?class=\"danger\"", text, re.S)
        bare = [f for f in forms if "data-confirm" not in f.split(">", 1)[0]]
        if bare and (name, len(bare)) not in TWO_STEP:
            unasked.append((name, len(bare)))
    assert unasked == [], unasked


def test_no_template_repeats_a_block_of_itself():
    """A botched edit of metering/correct.html (5a3f30b) inserted its new history section
    between every two characters of the old file: 1.4 MB that Jinja still rendered, so
    operators got a page of repeated tables with no correction form. Any long line that
    appears more than twice in one template is such an accident."""
    repeated = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        lines = [line.strip() for line in path.read_text().splitlines() if len(line.strip()) > 60]
        counts = {line: lines.count(line) for line in set(lines)}
        repeated += [(str(path.relative_to(TEMPLATES)), n) for n in counts.values() if n > 2]
    assert repeated == [], repeated
