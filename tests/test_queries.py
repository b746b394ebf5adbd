"""List pages and the API answer with a constant number of queries, however many rows."""

from contextlib import contextmanager

from sqlalchemy import event, func, select

from booking.extensions import db
from tests.conftest import login
from tests.factories import make_carrier, make_org, make_resource, make_user


@contextmanager
def count_queries():
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _queries_for(client, path, n_resources, carriers):
    for i in range(n_resources):
        make_resource(carriers[i % len(carriers)], f"R{len(carriers)}-{n_resources}-{i}")
    client.get(path)  # warm up (session, first-request work)
    with count_queries() as statements:
        response = client.get(path)
    assert response.status_code == 200
    return len(statements)


def test_catalogue_and_api_query_counts_do_not_grow_with_rows(app, client):
    carriers = [make_carrier(f"C{i}") for i in range(3)]
    user = make_user("r@example.com")
    make_org("Org", members=[user], resident_at=carriers[:1])
    login(client, "r@example.com")
    few = _queries_for(client, "/", 3, carriers)
    many = _queries_for(client, "/", 20, carriers)
    assert few == many
    assert many <= 10
    few_api = _queries_for(client, "/api/v1/resources", 2, carriers)
    many_api = _queries_for(client, "/api/v1/resources", 15, carriers)
    assert few_api == many_api


def test_operator_resource_list_query_count_is_constant(app, client):
    admin = make_user("a@example.com")
    carrier = make_carrier("C0", admin=admin)
    login(client, "a@example.com")
    few = _queries_for(client, "/operate/C0/resources/", 2, [carrier])
    many = _queries_for(client, "/operate/C0/resources/", 25, [carrier])
    assert few == many


def test_an_api_token_signs_in_with_one_statement(app):
    """Every API request starts with the bearer token's look-up: the token and its user in one
    statement (#15), once the last use has been recorded (at most every few minutes)."""
    from booking.accounts.service import api_token_for, create_api_token

    user = make_user("token@example.com")
    make_org("Token Co", members=[user])
    make_org("Token Two", members=[user])
    make_carrier("TK01", operators=[user])
    secret = create_api_token(user, "t", ["read"])[1]
    db.session.commit()
    assert api_token_for(secret)[0].id == user.id  # records the first use
    db.session.expire_all()  # a new request: nothing cached in the session
    with count_queries() as statements:
        found, scopes = api_token_for(secret)
        assert found.email == "token@example.com" and found.active
        # Two memberships × one carrier role joined: each collection still holds each row once.
        assert len(found.carrier_roles) == 1 and len(found.memberships) == 2
        assert found.carrier_roles[0].carrier.code == "TK01"
    assert scopes == frozenset({"read"})
    queries = [s for s in statements if s.strip().upper() != "BEGIN"]  # SQLite's own BEGIN
    assert len(queries) == 1, queries


def _queue_fixture(n_requests: int, code: str):
    """A carrier whose approval queue holds n requests on two resources (capacity 1, one
    needing a qualification), overlapping each other, an outage and an approved booking."""
    from datetime import UTC, datetime, timedelta

    from booking.bookings.models import Outage, QualificationGrant
    from tests.factories import make_booking, make_qualification

    carrier = make_carrier(code)
    training = make_qualification(carrier, "Line training")
    line = make_resource(carrier, "Line", always_open=True, requires_approval=True,
                         qualification_id=training.id)  # fmt: skip
    sem = make_resource(carrier, "SEM", always_open=True, requires_approval=True)
    people = [make_user(f"q{i}@{code.lower()}.test") for i in range(3)]
    org = make_org(f"Queue {code}", members=people[:2])
    t0 = datetime(2031, 3, 3, 1, 0, tzinfo=UTC)
    db.session.add(QualificationGrant(user_id=people[0].id, qualification_id=training.id,
                                      granted_at=t0 - timedelta(days=30)))  # fmt: skip
    db.session.add(Outage(resource_id=sem.id, start_at=t0 + timedelta(hours=5),
                          end_at=t0 + timedelta(hours=7)))  # fmt: skip
    make_booking(sem, people[1], org, t0 + timedelta(hours=1), t0 + timedelta(hours=2), "approved")
    for n in range(n_requests):
        start = t0 + timedelta(hours=n)
        resource = (line, sem)[n % 2]
        make_booking(resource, people[n % 3], org, start, start + timedelta(hours=3), "requested")
    db.session.commit()
    return carrier


def test_the_approval_queue_reads_the_same_facts_with_a_constant_number_of_queries(app):
    """The batched queue (#15) says what the per-request reading said, and its query count
    does not grow with the queue."""
    from booking.bookings import rules
    from booking.bookings.facts import context_of_existing
    from booking.bookings.rules import ResourcePolicy
    from booking.bookings.search import approval_queue

    small, large = _queue_fixture(2, "QA01"), _queue_fixture(12, "QA02")
    for carrier in (small, large):
        carrier_id = carrier.id
        db.session.expire_all()
        with count_queries() as statements:
            queue = approval_queue(carrier_id)
        counts = len([s for s in statements if s.strip().upper() != "BEGIN"])
        if carrier is small:
            small_count = counts
        for item in queue:
            booking = item["booking"]
            ctx = context_of_existing(booking)
            problems = rules.booking_problems(
                ResourcePolicy.of(booking.resource), booking.start_at, booking.end_at,
                booking.quantity, ctx,
            )  # fmt: skip
            expected = {p.code for p in problems if p.code in rules.CONFLICT_CODES}
            assert item["qualified"] == ctx.qualified, booking.id
            assert {p.code for p in item["conflicts"]} == expected, booking.id
    # The requests (with their events, hours, requesters), the facts, grants, memberships.
    assert len(queue) == 12 and counts == small_count <= 10
    assert {p.code for item in queue for p in item["conflicts"]} >= {"capacity_exceeded"}
    assert {item["qualified"] for item in queue} == {True, False}


def test_a_booking_is_made_in_six_statements(app, client):
    """POST /api/v1/bookings: the token with its user, memberships and roles; the resource
    locked and read with its opening hours and whether a webhook endpoint listens; the facts
    on the resource in one union; the booking; its history entry; the confirmation. Then the
    commit. With an endpoint listening, its look-up and the delivery come on top."""
    from booking.accounts.service import create_api_token
    from tests.booking_helpers import at, next_monday

    carrier = make_carrier("CQ01")
    sem = make_resource(carrier, "SEM", setup_minutes=15, cleanup_minutes=15)
    user = make_user("e@example.com")
    make_org("O", members=[user])
    token = create_api_token(user, "t")[1]
    m, resource_id = next_monday(), sem.id
    headers = {"Authorization": f"Bearer {token}"}
    counts = []
    for hour in (10, 13, 15):
        body = {
            "resource_id": resource_id,
            "start": at(m, hour).isoformat(),
            "end": at(m, hour + 1).isoformat(),
        }
        with count_queries() as statements:
            assert client.post("/api/v1/bookings", json=body, headers=headers).status_code == 201
        counts.append([s.split()[0] for s in statements if not s.startswith("BEGIN")])
    assert counts[1] == counts[2] == ["SELECT"] * 3 + ["INSERT"] * 3


def endpoint(carrier_id: int | None, active: bool = True) -> None:
    """A webhook endpoint for booking.created, of a carrier or (None) of the platform."""
    from booking.webhooks.models import WebhookEndpoint

    db.session.add(
        WebhookEndpoint(
            carrier_id=carrier_id,
            url="https://hooks.example.com/x",
            secret="s",
            events=["booking.created"],
            active=active,
        )
    )
    db.session.commit()


def test_a_booking_asks_for_webhook_endpoints_only_when_one_listens(app, client):
    """The lock's statement reads whether an active endpoint of the carrier or the platform
    exists; only then does emit look them up and queue a delivery. One of another carrier,
    or an inactive one, changes nothing."""
    from booking.accounts.service import create_api_token
    from booking.webhooks.models import WebhookDelivery
    from tests.booking_helpers import at, next_monday

    carrier, other = make_carrier("CQ01"), make_carrier("CQ02")
    sem = make_resource(carrier, "SEM")
    user = make_user("e@example.com")
    make_org("O", members=[user])
    token = create_api_token(user, "t")[1]
    m, resource_id = next_monday(), sem.id
    headers = {"Authorization": f"Bearer {token}"}

    def book(hour):
        body = {"resource_id": resource_id, "start": at(m, hour).isoformat()}
        body["end"] = at(m, hour + 1).isoformat()
        with count_queries() as statements:
            assert client.post("/api/v1/bookings", json=body, headers=headers).status_code == 201
        looked_up = sum(
            "FROM webhook_endpoints" in s and s.startswith("SELECT webhook") for s in statements
        )
        return looked_up, db.session.scalar(select(func.count(WebhookDelivery.id)))

    endpoint(other.id)
    endpoint(None, active=False)
    assert book(9) == (0, 0)
    endpoint(None)  # the platform's: hears every carrier
    assert book(11) == (1, 1)
    endpoint(carrier.id)
    assert book(14) == (1, 3)


def test_what_a_lock_read_of_the_listeners_lasts_only_its_transaction(app):
    """A scheduler or CLI session lives across transactions: an endpoint added after the
    lock's transaction ended hears the next event."""
    from booking.locking import lock_resource
    from booking.webhooks.events import emit

    carrier = make_carrier("CQ01")
    sem = make_resource(carrier, "SEM")
    db.session.commit()
    lock_resource(sem.id)
    assert emit("booking.created", carrier.id, {"id": 0}) == 0
    db.session.commit()
    endpoint(carrier.id)
    assert emit("booking.created", carrier.id, {"id": 0}) == 1
    db.session.rollback()
