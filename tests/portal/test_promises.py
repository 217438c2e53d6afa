from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

def test_count(john_client, job):
    john_client.get(reverse("portal:job", args=[job.public_id]))
    with CaptureQueriesContext(connection) as q:
        john_client.get(reverse("portal:job", args=[job.public_id]))
    for x in q.captured_queries:
        print(x["sql"][:150])
    print(len(q))
