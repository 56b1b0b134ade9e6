"""credential_accepted_record: what a task's gateway saw the model API accept, and nothing else."""

from datetime import timedelta

import pytest
from django.utils import timezone

from oauth_tokens.formats import credential_input_parse
from oauth_tokens.models import OAuthCredential
from oauth_tokens.services import credential_accepted_record, credential_store

pytestmark = pytest.mark.django_db

SETUP_TOKEN = "sk-ant-oat01-acceptance-setup-token-0123456789abcdef"


@pytest.fixture
def saved_an_hour_ago(user, make_credential):
    return make_credential(user, saved_at=timezone.now() - timedelta(hours=1))


def accepted_at(credential):
    return OAuthCredential.objects.get(pk=credential.pk).last_accepted_at


def test_a_new_credential_is_not_known_to_work(saved_an_hour_ago):
    assert accepted_at(saved_an_hour_ago) is None


def test_records_when_the_api_accepted_it(saved_an_hour_ago):
    at = timezone.now() - timedelta(minutes=3)
    assert credential_accepted_record(credential_id=saved_an_hour_ago.pk, at=at) is True
    assert accepted_at(saved_an_hour_ago) == at


def test_only_moves_forward_when_reports_arrive_out_of_order(saved_an_hour_ago):
    later = timezone.now() - timedelta(minutes=1)
    earlier = later - timedelta(minutes=10)
    assert credential_accepted_record(credential_id=saved_an_hour_ago.pk, at=later)
    assert credential_accepted_record(credential_id=saved_an_hour_ago.pk, at=earlier) is False
    assert accepted_at(saved_an_hour_ago) == later


def test_a_report_about_the_tokens_that_were_replaced_is_ignored(user, saved_an_hour_ago):
    # A task that ran with the old tokens reports after the user saved new ones.
    before_the_save = timezone.now() - timedelta(seconds=5)
    credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    assert credential_accepted_record(credential_id=saved_an_hour_ago.pk, at=before_the_save) is (
        False
    )
    assert accepted_at(saved_an_hour_ago) is None


def test_saving_new_tokens_forgets_that_the_old_ones_worked(user, saved_an_hour_ago):
    credential_accepted_record(credential_id=saved_an_hour_ago.pk, at=timezone.now())
    credential_store(owner=user, parsed=credential_input_parse(raw=SETUP_TOKEN))
    assert accepted_at(saved_an_hour_ago) is None


def test_a_time_in_the_future_is_taken_as_now(saved_an_hour_ago):
    before = timezone.now()
    credential_accepted_record(
        credential_id=saved_an_hour_ago.pk, at=timezone.now() + timedelta(days=365)
    )
    recorded = accepted_at(saved_an_hour_ago)
    assert before <= recorded <= timezone.now()


def test_an_unknown_credential_changes_nothing(saved_an_hour_ago):
    unknown = saved_an_hour_ago.pk + 1000
    assert credential_accepted_record(credential_id=unknown, at=timezone.now()) is False
