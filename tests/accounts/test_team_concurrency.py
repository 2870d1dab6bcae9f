import threading

import pytest
from django.db import connection, transaction

from accounts import errors, services
from accounts.models import Membership
from tests.accounts.factories import MembershipFactory, UserFactory

Role = Membership.Role


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner():
    first = MembershipFactory()
    second = MembershipFactory(organization=first.organization, user=UserFactory())
    organization = first.organization
    outcome = {}

    def second_demotes_first():
        try:
            services.change_role(
                organization=organization, actor=second.user, membership=first, role=Role.MEMBER
            )
            outcome["second"] = "demoted"
        except errors.TeamError as error:
            outcome["second"] = error
        finally:
            connection.close()

    with transaction.atomic():
        services.change_role(
            organization=organization, actor=first.user, membership=second, role=Role.MEMBER
        )
        racer = threading.Thread(target=second_demotes_first)
        racer.start()
        racer.join(timeout=1)
        # The owner rows are locked until this transaction commits, so the racer waits.
        assert racer.is_alive()
    racer.join(timeout=10)

    assert isinstance(outcome["second"], errors.TeamError)
    assert list(
        Membership.objects.filter(organization=organization, role=Role.OWNER).values_list(
            "pk", flat=True
        )
    ) == [first.pk]
