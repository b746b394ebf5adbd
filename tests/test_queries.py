"""List pages and the API answer with a constant number of queries, however many rows."""

from contextlib import contextmanager

from sqlalchemy import event

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
