"""The visibility rule is written twice: in SQL, for lists and single look-ups
(`catalogue.service._visible`, behind `visible_resources_query` and `visible_resource`), and
in Python, for a resource already loaded under its lock (`may_see`, used by bookings,
metering, files and feeds). Every kind of person against every kind of resource: the three
answers agree, and they are the rule's answers."""

from flask_login import AnonymousUserMixin

from booking.catalogue.service import may_see, visible_resource, visible_resources_query
from booking.extensions import db
from booking.problems import NotFound
from tests.factories import make_carrier, make_org, make_resource, make_user


def _world():
    a_admin, a_operator, b_admin = (
        make_user("a-admin@example.com"),
        make_user("a-op@example.com"),
        make_user("b-admin@example.com"),
    )
    a = make_carrier("CQA", admin=a_admin, operators=[a_operator])
    b = make_carrier("CQB", admin=b_admin)
    resources = {
        (carrier.code, visibility, status): make_resource(
            carrier, f"{carrier.code} {visibility} {status}", visibility=visibility, status=status
        )
        for carrier in (a, b)
        for visibility in ("public", "residents")
        for status in ("active", "retired")
    }
    resident_at_a, manager_at_b, both, nowhere, no_org = (
        make_user(f"{name}@example.com")
        for name in ("resident-a", "manager-b", "both", "nowhere", "no-org")
    )
    make_org("Resident at A", members=[resident_at_a, both], resident_at=[a])
    make_org("Resident at B", managers=[manager_at_b], members=[both], resident_at=[b])
    make_org("Resident nowhere", members=[nowhere])
    platform_admin = make_user("root@example.com", admin=True)
    # Who may see the residents-only resources of which carrier (public ones: everyone).
    people = {
        "nobody signed in": (None, set()),
        "an anonymous visitor": (AnonymousUserMixin(), set()),
        "a member of an organisation resident at A": (resident_at_a, {"CQA"}),
        "a manager of an organisation resident at B": (manager_at_b, {"CQB"}),
        "a member of organisations resident at A and at B": (both, {"CQA", "CQB"}),
        "a member of an organisation resident nowhere": (nowhere, set()),
        "a user of no organisation": (no_org, set()),
        "A's admin": (a_admin, {"CQA"}),
        "A's operator": (a_operator, {"CQA"}),
        "B's admin": (b_admin, {"CQB"}),
        "a platform admin (sees as a user; the admin pages are elsewhere)": (platform_admin, set()),
    }
    return resources, people


def test_the_rule_in_sql_and_in_python_agree_and_are_the_rule(app):
    resources, people = _world()
    for who, (user, residents_of) in people.items():
        listed = {r.id for r in db.session.scalars(visible_resources_query(user)).unique()}
        for (carrier_code, visibility, status), resource in resources.items():
            expected = status == "active" and (
                visibility == "public" or carrier_code in residents_of
            )
            try:
                found = visible_resource(user, resource.id).id == resource.id
            except NotFound:
                found = False
            answers = {
                "visible_resources_query": resource.id in listed,
                "visible_resource": found,
                "may_see": may_see(user, resource),
            }
            assert answers == dict.fromkeys(answers, expected), (who, resource.name_en)
