"""Names are one line (break-it round): an organisation, project, carrier, qualification or
resource name with line breaks was stored, and drawn as a cell many lines tall in PDFs and
tables. Descriptions keep their line breaks."""

from __future__ import annotations

import pytest

from booking.carriers import service as carriers
from booking.catalogue.rules import ResourceFields, resource_problems
from booking.extensions import db
from booking.orgs import projects
from booking.orgs import service as orgs
from booking.orgs.models import Organisation
from booking.problems import ServiceError
from tests.factories import make_carrier, make_org, make_user

BROKEN = ("A\nB", "A\r\nB", "A\u2028B")


def _codes(refused: pytest.ExceptionInfo) -> dict[str, str]:
    return {p.field: p.code for p in refused.value.problems}


@pytest.mark.parametrize("name", BROKEN)
def test_organisation_project_and_invoice_title_names_are_one_line(app, name):
    boss = make_user("boss@example.com")
    with pytest.raises(ServiceError) as refused:
        orgs.create_organisation(boss, name)
    assert _codes(refused) == {"name": "control_characters"}
    assert db.session.query(Organisation).count() == 0
    org = make_org("Startup", managers=[boss])
    with pytest.raises(ServiceError) as refused:
        projects.add_project(boss, org.id, code=name, name=name)
    assert _codes(refused) == {"code": "control_characters", "name": "control_characters"}


@pytest.mark.parametrize("name", BROKEN)
def test_carrier_and_qualification_names_are_one_line_descriptions_keep_breaks(app, name):
    op = make_user("op@example.com")
    carrier = make_carrier("CQ01", admin=op)
    fields = dict(name_zh=carrier.name_zh, name_en=name, address=name, timezone=carrier.timezone,
                  description_zh="第一行\n第二行", description_en="")  # fmt: skip
    with pytest.raises(ServiceError) as refused:
        carriers.update_settings(carrier, actor=op, **fields)
    assert _codes(refused) == {"name_en": "control_characters", "address": "control_characters"}
    with pytest.raises(ServiceError) as refused:
        carriers.create_qualification(carrier, name, "Laser safety", actor=op)
    assert _codes(refused) == {"name_zh": "control_characters"}


@pytest.mark.parametrize("name", BROKEN)
def test_resource_names_units_and_location_are_one_line(name):
    fields = ResourceFields(kind="instrument", name_zh=name, name_en="SEM", capacity=1,
                            slot_minutes=60, min_duration_minutes=60, max_duration_minutes=240,
                            always_open=True,
                            location=name, unit_en=name, description_en="line one\nline two")  # fmt: skip
    codes = {p.field: p.code for p in resource_problems(fields, set())}
    assert codes == {f: "control_characters" for f in ("name_zh", "location", "unit_en")}
