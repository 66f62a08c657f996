"""The typed wrappers against the recorded Moodle 4.5 contract.

Each wrapper is fed a recorded answer through a fake Caller; the test checks that the
parameters it sent flatten to exactly the form fields of the recorded request, and that the
recorded answer parses into its models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from moodle_bridge import errors
from moodle_bridge.moodle import (
    api,
    cohorts,
    competency,
    completion,
    courses,
    enrol,
    reportbuilder,
    site,
    users,
)
from moodle_bridge.moodle.client import MoodleClient
from moodle_bridge.moodle.encoding import encode_params

RECORDINGS = Path(__file__).resolve().parents[1] / "contract" / "recordings"


# --- the recordings and a fake Caller -----------------------------------------------------------
@cache
def _recording(function: str, directory: Path = RECORDINGS) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / f"{function}.json").read_text("utf-8"))
    return data


def case(function: str, name: str) -> dict[str, Any]:
    for item in _recording(function)["cases"]:
        if item["name"] == name:
            return dict(item)
    raise LookupError(f"no case {name!r} in {function}.json")


@dataclass
class Sent:
    wsfunction: str
    params: Mapping[str, Any]
    retry_writes: bool

    def fields(self) -> dict[str, str]:
        return dict(encode_params(self.params))


class FakeCaller:
    """Answers each call with the next of ``answers`` and records what was sent."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[Sent] = []

    def call(
        self,
        wsfunction: str,
        params: Mapping[str, Any] | None = None,
        *,
        retry_writes: bool = True,
    ) -> Any:
        self.sent.append(Sent(wsfunction, params or {}, retry_writes))
        if not self.answers:
            raise AssertionError(f"unexpected extra call to {wsfunction}")
        return self.answers.pop(0)

    def chunks(self, items: Any, item_params: Any, *, others: Any = None, limit: Any = None) -> Any:
        yield list(items)


def replaying(function: str, *names: str) -> FakeCaller:
    """A caller that answers with the recorded responses of ``names``, in order."""
    return FakeCaller(*(case(function, name)["response"] for name in names))


def assert_sent_as_recorded(caller: FakeCaller, function: str, *names: str) -> None:
    assert len(caller.sent) == len(names)
    for sent, name in zip(caller.sent, names, strict=True):
        request = case(function, name)["request"]
        assert sent.wsfunction == request["wsfunction"] == function
        assert sent.fields() == request["params"], name


# --- api ------------------------------------------------------------------------------------------
def test_moodle_client_and_fake_are_callers() -> None:
    assert issubclass(MoodleClient, api.Caller)
    assert isinstance(FakeCaller(), api.Caller)


def test_unexpected_shape_is_fatal_and_keeps_values_out_of_the_message() -> None:
    caller = FakeCaller([{"id": "not-a-number", "fullname": "Rina Wulandari"}])
    with pytest.raises(api.UnexpectedResponse) as info:
        users.get_users_by_field(caller, "username", ["199501012020012001"])
    err = info.value
    assert isinstance(err, errors.Fatal)
    assert err.wsfunction == "core_user_get_users_by_field"
    assert "0.id" in str(err)
    assert "not-a-number" not in str(err)
    assert "Rina" not in str(err)


def test_a_list_answer_that_is_not_a_list_is_unexpected() -> None:
    with pytest.raises(api.UnexpectedResponse):
        cohorts.get_cohorts(FakeCaller({"cohorts": []}), [1])


def test_input_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        users.UserUpdate(id=1, suspend=True)  # type: ignore[call-arg]


def test_answer_models_ignore_fields_moodle_adds() -> None:
    created = users.CreatedUser.model_validate({"id": 1, "username": "u", "newfield": [1]})
    assert created == users.CreatedUser(id=1, username="u")


def test_context_system_is_named_by_level() -> None:
    assert api.to_params(api.Context.system()) == {"contextlevel": "system", "instanceid": 0}


# --- site -----------------------------------------------------------------------------------------
def test_get_site_info() -> None:
    caller = replaying("core_webservice_get_site_info", "success")
    info = site.get_site_info(caller)
    assert_sent_as_recorded(caller, "core_webservice_get_site_info", "success")
    assert (info.sitename, info.username, info.userid) == ("Moodle Real Test", "bridge", 3)
    assert info.release == "4.5.6 (Build: 20250811)"
    assert info.version == "2024100706"
    assert info.siteurl == "http://127.0.0.1:8080"
    assert "core_user_create_users" in info.functions
    assert "enrol_manual_enrol_users" in info.functions
    assert info.userissiteadmin is False
    assert info.feature_enabled("enablecompletion") is True
    assert info.feature_enabled("enableglobalsearch") is False
    assert info.feature_enabled("nosuchfeature") is None


# --- users ----------------------------------------------------------------------------------------
def test_create_users_single() -> None:
    caller = replaying("core_user_create_users", "success_single_user")
    user = users.NewUser(
        username="199501012020012001",
        firstname="Rina",
        lastname="Wulandari",
        email="rina.wulandari@kemenag.example",
        password="Passw0rd!",
        idnumber="199501012020012001",
        city="Bandung",
        country="ID",
    )
    created = users.create_users(caller, [user])
    assert_sent_as_recorded(caller, "core_user_create_users", "success_single_user")
    assert created == [users.CreatedUser(id=10, username="199501012020012001")]
    # A create must not be resent blindly: Moodle has no idempotency keys.
    assert caller.sent[0].retry_writes is False


def test_create_users_with_customfields() -> None:
    caller = replaying("core_user_create_users", "success_with_customfields")
    fields = {
        "unit": "Direktorat Jenderal Pendidikan Islam",
        "satker": "Kantor Kementerian Agama Kabupaten Bogor",
        "jabatan": "Pranata Komputer Ahli Pertama",
        "golongan": "III/a",
    }
    user = users.NewUser(
        username="199502022020012030",
        firstname="Laila",
        lastname="Fitriani",
        email="laila.fitriani@kemenag.example",
        password="Passw0rd!",
        idnumber="199502022020012030",
        customfields=[users.CustomFieldValue(type=k, value=v) for k, v in fields.items()],
    )
    created = users.create_users(caller, [user])
    assert_sent_as_recorded(caller, "core_user_create_users", "success_with_customfields")
    assert [(u.id, u.username) for u in created] == [(22, "199502022020012030")]


def test_create_users_batch_keeps_order() -> None:
    caller = replaying("core_user_create_users", "success_batch_of_3")
    people = [
        ("199501022020011002", "Agus", "Setiawan", "agus.setiawan"),
        ("199501032020012003", "Dian", "Permata", "dian.permata"),
        ("199501042020011004", "Hendra", "Gunawan", "hendra.gunawan"),
    ]
    batch = [
        users.NewUser(
            username=nip,
            firstname=first,
            lastname=last,
            email=f"{mail}@kanwil-jabar.kemenag.example",
            password="Passw0rd!",
        )
        for nip, first, last, mail in people
    ]
    created = users.create_users(caller, batch)
    assert_sent_as_recorded(caller, "core_user_create_users", "success_batch_of_3")
    assert [u.username for u in created] == [nip for nip, *_ in people]
    assert [u.id for u in created] == [11, 12, 13]


def test_create_users_answering_for_fewer_users_is_truncated() -> None:
    caller = FakeCaller([{"id": 10, "username": "a"}])
    batch = [
        users.NewUser(username=name, firstname="A", lastname="B", email=f"{name}@x.example")
        for name in ("a", "b")
    ]
    with pytest.raises(errors.TruncatedRequest) as info:
        users.create_users(caller, batch)
    assert info.value.wsfunction == "core_user_create_users"


def test_update_users_sends_only_the_fields_given() -> None:
    caller = replaying("core_user_update_users", "success_update_fields")
    update = users.UserUpdate(
        id=11,
        firstname="Agus Budi",
        email="agus.setiawan2@kanwil-jabar.kemenag.example",
        idnumber="199501022020011902",
    )
    assert users.update_users(caller, [update]) == []
    assert_sent_as_recorded(caller, "core_user_update_users", "success_update_fields")


@pytest.mark.parametrize(("name", "suspended"), [("suspend_user", True), ("unsuspend_user", False)])
def test_update_users_suspends_and_reactivates(name: str, suspended: bool) -> None:
    userid = int(case("core_user_update_users", name)["request"]["params"]["users[0][id]"])
    caller = replaying("core_user_update_users", name)
    users.update_users(caller, [users.UserUpdate(id=userid, suspended=suspended)])
    assert_sent_as_recorded(caller, "core_user_update_users", name)


def test_update_users_customfields() -> None:
    caller = replaying("core_user_update_users", "update_customfields")
    fields = {
        "unit": "Direktorat Jenderal Bimbingan Masyarakat Islam",
        "satker": "Kanwil Kementerian Agama Provinsi Jawa Barat",
        "jabatan": "Penyuluh Agama Islam Ahli Muda",
        "golongan": "III/c",
    }
    update = users.UserUpdate(
        id=11, customfields=[users.CustomFieldValue(type=k, value=v) for k, v in fields.items()]
    )
    users.update_users(caller, [update])
    assert_sent_as_recorded(caller, "core_user_update_users", "update_customfields")


def test_update_users_returns_per_item_warnings() -> None:
    caller = replaying("core_user_update_users", "batch_one_valid_one_invalid")
    warnings = users.update_users(
        caller,
        [
            users.UserUpdate(id=12, firstname="Dian Sari"),
            users.UserUpdate(id=99999998, firstname="Ghost"),
        ],
    )
    assert_sent_as_recorded(caller, "core_user_update_users", "batch_one_valid_one_invalid")
    assert warnings == [
        api.MoodleWarning(
            item="user", itemid=99999998, warningcode="invaliduserid", message="Invalid user ID"
        )
    ]


def test_get_users_by_field_single() -> None:
    caller = replaying("core_user_get_users_by_field", "by_username_single")
    found = users.get_users_by_field(caller, "username", ["199501012020012001"])
    assert_sent_as_recorded(caller, "core_user_get_users_by_field", "by_username_single")
    [user] = found
    assert (user.id, user.username, user.idnumber) == (
        10,
        "199501012020012001",
        "199501012020012001",
    )
    assert user.suspended is False
    assert user.customfields == []


def test_get_users_by_field_with_customfields_and_suspension() -> None:
    name = "seed_users_with_customfields"
    values = list(case("core_user_get_users_by_field", name)["request"]["params"].values())[1:]
    caller = replaying("core_user_get_users_by_field", name)
    found = users.get_users_by_field(caller, "username", values)
    assert_sent_as_recorded(caller, "core_user_get_users_by_field", name)
    by_username = {user.username: user for user in found}
    ahmad = by_username["197501012000031001"]
    assert ahmad.customfield_values == {
        "unit": "Sekretariat Jenderal",
        "satker": "Biro Sumber Daya Manusia",
        "jabatan": "Analis Sumber Daya Manusia Aparatur Ahli Madya",
        "golongan": "IV/a",
    }
    assert ahmad.customfields[0].name == "Unit Eselon I"
    assert by_username["196805101994031005"].suspended is True


def test_get_users_by_field_user_without_idnumber() -> None:
    caller = replaying("core_user_get_users_by_field", "suspended_user")
    [user] = users.get_users_by_field(caller, "id", [13])
    assert_sent_as_recorded(caller, "core_user_get_users_by_field", "suspended_user")
    assert user.idnumber is None
    assert user.suspended is True


def test_get_users_by_field_without_values_makes_no_call() -> None:
    caller = FakeCaller()
    assert users.get_users_by_field(caller, "idnumber", []) == []
    assert caller.sent == []


def test_get_users() -> None:
    caller = replaying("core_user_get_users", "by_username")
    result = users.get_users(caller, {"username": "199501012020012001"})
    assert_sent_as_recorded(caller, "core_user_get_users", "by_username")
    assert [user.id for user in result.users] == [10]
    assert result.warnings == []


def test_get_users_unsupported_key_warns() -> None:
    caller = replaying("core_user_get_users", "invalid_key")
    result = users.get_users(caller, {"city": "Bandung"})
    assert_sent_as_recorded(caller, "core_user_get_users", "invalid_key")
    assert [w.warningcode for w in result.warnings] == ["invalidfieldparameter"]
    assert result.warnings[0].item == "city"
    assert result.warnings[0].itemid is None
    # A preference value Moodle sends as a JSON number is still text.
    bridge = next(user for user in result.users if user.username == "bridge")
    assert {p.name: p.value for p in bridge.preferences}["_lastloaded"] == "1795812319"


# --- cohorts --------------------------------------------------------------------------------------
def test_create_cohorts_in_system_context() -> None:
    caller = replaying("core_cohort_create_cohorts", "success_system_context")
    cohort = cohorts.NewCohort(
        name="Kanwil Kemenag Jawa Barat",
        idnumber="satker:KANWIL-JABAR",
        description="Pegawai Kanwil Jawa Barat",
        visible=True,
    )
    [created] = cohorts.create_cohorts(caller, [cohort])
    assert_sent_as_recorded(caller, "core_cohort_create_cohorts", "success_system_context")
    assert (created.id, created.idnumber, created.visible) == (4, "satker:KANWIL-JABAR", True)
    assert caller.sent[0].retry_writes is False


def test_create_cohorts_in_category_by_idnumber() -> None:
    caller = replaying("core_cohort_create_cohorts", "success_category_by_idnumber")
    cohort = cohorts.NewCohort(
        name="Kanwil Jawa Barat - Peserta Manajerial",
        idnumber="satker:KANWIL-JABAR-MNJ",
        categorytype=cohorts.CategoryRef(type="idnumber", value="KAT-MNJ"),
    )
    [created] = cohorts.create_cohorts(caller, [cohort])
    assert_sent_as_recorded(caller, "core_cohort_create_cohorts", "success_category_by_idnumber")
    assert created.id == 5
    assert created.description == ""


def test_search_cohorts() -> None:
    caller = replaying("core_cohort_search_cohorts", "query_prefix_system_all")
    found = cohorts.search_cohorts(
        caller, "Kanwil", context=api.Context(contextid=1), includes="all"
    )
    assert_sent_as_recorded(caller, "core_cohort_search_cohorts", "query_prefix_system_all")
    assert [c.idnumber for c in found] == ["satker:KANWIL-JABAR-MNJ", "satker:KANWIL-JABAR"]
    assert found[0].customfields == []


def test_get_cohorts() -> None:
    caller = replaying("core_cohort_get_cohorts", "by_ids")
    found = cohorts.get_cohorts(caller, [4, 5])
    assert_sent_as_recorded(caller, "core_cohort_get_cohorts", "by_ids")
    assert [c.id for c in found] == [4, 5]


def test_add_cohort_members() -> None:
    name = "success_by_idnumber_and_username"
    caller = replaying("core_cohort_add_cohort_members", name)
    members = [
        cohorts.CohortMemberRef(
            cohorttype=cohorts.CohortRef(type="idnumber", value="satker:KANWIL-JABAR"),
            usertype=cohorts.UserRef(type="username", value="199501012020012001"),
        ),
        cohorts.CohortMemberRef.by_ids(4, 11),
    ]
    assert cohorts.add_cohort_members(caller, members) == []
    assert_sent_as_recorded(caller, "core_cohort_add_cohort_members", name)


def test_add_cohort_members_warnings_without_item() -> None:
    caller = replaying("core_cohort_add_cohort_members", "mixed_batch_valid_and_invalid")
    members = [
        cohorts.CohortMemberRef(
            cohorttype=cohorts.CohortRef(type="id", value=cohort),
            usertype=cohorts.UserRef(type="username", value=username),
        )
        for cohort, username in [
            (4, "199501032020012003"),
            (4, "199901012099011004"),
            (99999999, "199501032020012003"),
        ]
    ]
    warnings = cohorts.add_cohort_members(caller, members)
    assert_sent_as_recorded(
        caller, "core_cohort_add_cohort_members", "mixed_batch_valid_and_invalid"
    )
    assert [(w.warningcode, w.item, w.itemid) for w in warnings] == [("2", None, None)] * 2


def test_cohort_member_refs_refuse_unknown_types() -> None:
    with pytest.raises(ValidationError):
        cohorts.CohortRef.model_validate({"type": "shortname", "value": "x"})


def test_delete_cohort_members() -> None:
    caller = replaying("core_cohort_delete_cohort_members", "success")
    member = cohorts.CohortMember(cohortid=4, userid=11)
    cohorts.delete_cohort_members(caller, [member])
    assert_sent_as_recorded(caller, "core_cohort_delete_cohort_members", "success")


def test_get_cohort_members() -> None:
    caller = replaying("core_cohort_get_cohort_members", "success")
    found = cohorts.get_cohort_members(caller, [4, 5])
    assert_sent_as_recorded(caller, "core_cohort_get_cohort_members", "success")
    assert found == [
        cohorts.CohortMembers(cohortid=4, userids=[13, 12, 11, 10]),
        cohorts.CohortMembers(cohortid=5, userids=[]),
    ]


# --- courses --------------------------------------------------------------------------------------
def test_get_courses_by_idnumber() -> None:
    caller = replaying("core_course_get_courses_by_field", "by_idnumber")
    [course] = courses.get_courses_by_field(caller, "idnumber", "MNJ-INTEGRITAS-1")
    assert_sent_as_recorded(caller, "core_course_get_courses_by_field", "by_idnumber")
    assert (course.id, course.shortname, course.categoryid) == (2, "MNJ-INTEGRITAS-1", 2)
    assert course.fullname == "Integritas dan Antikorupsi"
    assert course.enablecompletion is True
    assert course.visible is True
    assert (course.startdate, course.enddate) == (1735689600, 0)
    # Moodle leaves idnumber out for this token, even when looking courses up by it.
    assert course.idnumber is None
    assert {o.name: o.value for o in course.courseformatoptions}["hiddensections"] == "1"


def test_get_courses_by_ids_joins_the_ids() -> None:
    caller = replaying("core_course_get_courses_by_field", "by_ids")
    found = courses.get_courses_by_field(caller, "ids", [2, 3])
    assert_sent_as_recorded(caller, "core_course_get_courses_by_field", "by_ids")
    assert [c.id for c in found] == [2, 3]


def test_course_with_completion_disabled() -> None:
    caller = replaying("core_course_get_courses_by_field", "course_with_completion_disabled")
    [course] = courses.get_courses_by_field(caller, "shortname", "SOS-ORIENTASI-0")
    assert_sent_as_recorded(
        caller, "core_course_get_courses_by_field", "course_with_completion_disabled"
    )
    assert course.enablecompletion is False
    assert course.showcompletionconditions is None


def test_get_categories() -> None:
    caller = replaying("core_course_get_categories", "by_name_with_subcategories")
    found = courses.get_categories(caller, {"name": "Teknis"}, addsubcategories=True)
    assert_sent_as_recorded(caller, "core_course_get_categories", "by_name_with_subcategories")
    assert [(c.id, c.parent, c.path) for c in found] == [(3, 0, "/3"), (5, 3, "/3/5")]


def test_get_categories_by_idnumber() -> None:
    caller = replaying("core_course_get_categories", "by_idnumber_admin")
    [category] = courses.get_categories(caller, {"idnumber": "KAT-MNJ"}, addsubcategories=False)
    assert_sent_as_recorded(caller, "core_course_get_categories", "by_idnumber_admin")
    assert (category.id, category.idnumber, category.visible) == (2, "KAT-MNJ", True)


# --- enrol ----------------------------------------------------------------------------------------
def test_enrol_users_batch() -> None:
    caller = replaying("enrol_manual_enrol_users", "success_batch_multi_course")
    batch = [
        enrol.Enrolment(roleid=5, userid=11, courseid=2),
        enrol.Enrolment(roleid=5, userid=12, courseid=2),
        enrol.Enrolment(roleid=5, userid=10, courseid=6),
    ]
    enrol.enrol_users(caller, batch)
    assert_sent_as_recorded(caller, "enrol_manual_enrol_users", "success_batch_multi_course")


def test_enrol_users_with_times() -> None:
    caller = replaying("enrol_manual_enrol_users", "with_timestart_timeend")
    item = enrol.Enrolment(
        roleid=5, userid=14, courseid=3, timestart=1700000000, timeend=1900000000
    )
    enrol.enrol_users(caller, [item])
    assert_sent_as_recorded(caller, "enrol_manual_enrol_users", "with_timestart_timeend")


@pytest.mark.parametrize(
    ("name", "suspend"),
    [("suspend_existing_enrolment", True), ("reactivate_existing_enrolment", False)],
)
def test_enrol_users_suspend_flag(name: str, suspend: bool) -> None:
    params = case("enrol_manual_enrol_users", name)["request"]["params"]
    caller = replaying("enrol_manual_enrol_users", name)
    item = enrol.Enrolment(
        roleid=5,
        userid=int(params["enrolments[0][userid]"]),
        courseid=int(params["enrolments[0][courseid]"]),
        suspend=suspend,
    )
    enrol.enrol_users(caller, [item])
    assert_sent_as_recorded(caller, "enrol_manual_enrol_users", name)


def test_unenrol_users() -> None:
    caller = replaying("enrol_manual_unenrol_users", "success")
    enrol.unenrol_users(caller, [enrol.Unenrolment(userid=12, courseid=3)])
    assert_sent_as_recorded(caller, "enrol_manual_unenrol_users", "success")


def test_get_enrolled_users_default() -> None:
    caller = replaying("core_enrol_get_enrolled_users", "success_default")
    found = enrol.get_enrolled_users(caller, 2)
    assert_sent_as_recorded(caller, "core_enrol_get_enrolled_users", "success_default")
    ahmad = found[0]
    assert (ahmad.id, ahmad.username, ahmad.idnumber) == (
        5,
        "197501012000031001",
        "197501012000031001",
    )
    assert [r.shortname for r in ahmad.roles] == ["student"]
    assert [c.id for c in ahmad.enrolledcourses] == [2, 5]
    assert ahmad.customfields[0].displayvalue is None


def test_get_enrolled_users_with_options() -> None:
    caller = replaying("core_enrol_get_enrolled_users", "userfields_and_paging")
    options: dict[str, str | int] = {
        "userfields": "id,username,idnumber,email",
        "limitfrom": 0,
        "limitnumber": 2,
        "sortby": "id",
    }
    found = enrol.get_enrolled_users(caller, 2, options)
    assert_sent_as_recorded(caller, "core_enrol_get_enrolled_users", "userfields_and_paging")
    assert [u.email for u in found] == [
        "ahmad.fauzi@kemenag.example",
        "siti.rahmawati@kemenag.example",
    ]


def test_iter_enrolled_users_pages_until_a_short_page() -> None:
    names = [f"userfields_id_username_idnumber_page{n}" for n in (1, 2, 3, 4)]
    caller = replaying("core_enrol_get_enrolled_users", *names)
    found = list(enrol.iter_enrolled_users(caller, 2, page_size=2))
    assert_sent_as_recorded(caller, "core_enrol_get_enrolled_users", *names)
    assert [u.id for u in found] == [5, 6, 10, 11, 12, 14]
    # Eko has no idnumber: Moodle leaves the field out.
    assert found[-1].idnumber is None


def test_iter_enrolled_users_refuses_empty_pages() -> None:
    with pytest.raises(ValueError, match="page_size"):
        next(enrol.iter_enrolled_users(FakeCaller(), 2, page_size=0))


def test_get_users_courses() -> None:
    caller = replaying("core_enrol_get_users_courses", "returnusercount_0")
    found = enrol.get_users_courses(caller, 11, returnusercount=False)
    assert_sent_as_recorded(caller, "core_enrol_get_users_courses", "returnusercount_0")
    assert [(c.id, c.completed, c.progress) for c in found] == [(2, False, 0.0), (6, False, None)]
    assert found[0].enrolledusercount is None
    assert found[0].idnumber == "MNJ-INTEGRITAS-1"


def test_get_users_courses_after_completion() -> None:
    caller = replaying("core_enrol_get_users_courses", "success_after_completion")
    found = enrol.get_users_courses(caller, 10)
    assert caller.sent[0].fields() == {"userid": "10", "returnusercount": "1"}
    progress = {c.shortname: (c.completed, c.progress) for c in found}
    assert progress == {
        "MNJ-INTEGRITAS-1": (True, 100.0),
        "TEK-PBJ-4": (False, None),
        "TEK-KEU-2": (True, 100.0),
    }
    assert found[0].enrolledusercount == 6


def test_get_course_enrolment_methods() -> None:
    caller = replaying("core_enrol_get_course_enrolment_methods", "success")
    assert enrol.get_course_enrolment_methods(caller, 2) == []
    assert_sent_as_recorded(caller, "core_enrol_get_course_enrolment_methods", "success")
    method = enrol.EnrolmentMethod.model_validate(
        {"id": 3, "courseid": 2, "type": "self", "name": "Self", "status": "1"}
    )
    assert method.wsfunction is None


# --- completion -----------------------------------------------------------------------------------
def test_course_completion_not_completed() -> None:
    name = "enrolled_not_completed_activity_course"
    caller = replaying("core_completion_get_course_completion_status", name)
    status = completion.get_course_completion_status(caller, 2, 10)
    assert_sent_as_recorded(caller, "core_completion_get_course_completion_status", name)
    assert status.completed is False
    assert status.aggregation == completion.AGGREGATION_ALL
    assert [c.complete for c in status.completions] == [False, False]
    assert status.completions[0].timecompleted is None
    assert status.completions[0].details.requirement == "Marking yourself complete"
    assert status.timecompleted is None


def test_course_completion_time_from_the_criteria() -> None:
    name = "completed_via_activity_criteria_and_cron_task"
    caller = replaying("core_completion_get_course_completion_status", name)
    status = completion.get_course_completion_status(caller, 2, 10)
    assert_sent_as_recorded(caller, "core_completion_get_course_completion_status", name)
    assert status.completed is True
    assert status.timecompleted == 1748736000


def test_course_completion_written_directly_has_no_time() -> None:
    name = "completed_via_direct_course_completion"
    caller = replaying("core_completion_get_course_completion_status", name)
    status = completion.get_course_completion_status(caller, 6, 10)
    assert_sent_as_recorded(caller, "core_completion_get_course_completion_status", name)
    assert status.completed is True
    assert [c.complete for c in status.completions] == [False]
    assert status.timecompleted is None


def _criterion(complete: bool, timecompleted: int | None) -> dict[str, Any]:
    details = {"type": "t", "criteria": "c", "requirement": "r", "status": ""}
    return {
        "type": 4,
        "title": "Activity completion",
        "status": "Yes" if complete else "No",
        "complete": complete,
        "timecompleted": timecompleted,
        "details": details,
    }


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [(completion.AGGREGATION_ALL, 300), (completion.AGGREGATION_ANY, 100)],
)
def test_course_completion_time_follows_aggregation(aggregation: int, expected: int) -> None:
    status = completion.CourseCompletionStatus.model_validate(
        {
            "completed": True,
            "aggregation": aggregation,
            "completions": [_criterion(True, 300), _criterion(True, 100), _criterion(False, None)],
        }
    )
    assert status.timecompleted == expected


def test_activities_completion_status() -> None:
    name = "success_completed_user"
    caller = replaying("core_completion_get_activities_completion_status", name)
    found = completion.get_activities_completion_status(caller, 2, 10)
    assert_sent_as_recorded(caller, "core_completion_get_activities_completion_status", name)
    assert [(a.cmid, a.state, a.timecompleted) for a in found] == [
        (2, 1, 1748736000),
        (3, 1, 1748736000),
    ]
    assert found[1].details[0].rulename == "completionview"
    assert found[1].details[0].rulevalue.status == 1


def test_activities_completion_status_incomplete() -> None:
    name = "success_incomplete_user"
    caller = replaying("core_completion_get_activities_completion_status", name)
    found = completion.get_activities_completion_status(caller, 2, 11)
    assert_sent_as_recorded(caller, "core_completion_get_activities_completion_status", name)
    assert [(a.state, a.timecompleted, a.overrideby) for a in found] == [(0, 0, None)] * 2


# --- reportbuilder --------------------------------------------------------------------------------
def test_retrieve_report_page() -> None:
    caller = replaying("core_reportbuilder_retrieve_report", "page0_perpage5")
    page = reportbuilder.retrieve_report(caller, 1, page=0, perpage=5)
    assert_sent_as_recorded(caller, "core_reportbuilder_retrieve_report", "page0_perpage5")
    assert (page.page, page.perpage) == (0, 5)
    assert page.details.name == "Bridge course completions"
    assert page.details.settingsdata is None
    assert page.data.totalrowcount == 17
    assert page.data.headers[4] == "Completed"
    assert len(page.rows) == 5
    assert page.rows[2][2:7] == [
        "199501012020012001",
        "199501012020012001",
        "Yes",
        "Sunday, 1 June 2025, 7:00 AM",
        "100.0%",
    ]


def test_iter_report_pages_in_one_page() -> None:
    caller = replaying("core_reportbuilder_retrieve_report", "all_rows_perpage100")
    pages = list(reportbuilder.iter_report_pages(caller, 1, perpage=100))
    assert_sent_as_recorded(caller, "core_reportbuilder_retrieve_report", "all_rows_perpage100")
    assert [len(p.rows) for p in pages] == [17]


def test_iter_report_pages_stops_at_an_empty_page() -> None:
    caller = replaying("core_reportbuilder_retrieve_report", "page0_perpage5", "page_beyond_end")
    pages = list(reportbuilder.iter_report_pages(caller, 1, perpage=5))
    assert [s.fields()["page"] for s in caller.sent] == ["0", "1"]
    assert [(p.page, len(p.rows)) for p in pages] == [(0, 5)]


def test_iter_report_pages_walks_to_the_total() -> None:
    full = case("core_reportbuilder_retrieve_report", "all_rows_perpage100")["response"]

    def page_of(start: int, size: int) -> dict[str, Any]:
        rows = full["data"]["rows"][start : start + size]
        return {**full, "data": {**full["data"], "rows": rows}}

    caller = FakeCaller(*(page_of(start, 5) for start in (0, 5, 10, 15)))
    pages = list(reportbuilder.iter_report_pages(caller, 1, perpage=5))
    assert [len(p.rows) for p in pages] == [5, 5, 5, 2]
    assert [p.page for p in pages] == [0, 1, 2, 3]


def test_iter_report_pages_yields_an_empty_first_page() -> None:
    empty = case("core_reportbuilder_retrieve_report", "page_beyond_end")["response"]
    caller = FakeCaller({**empty, "data": {**empty["data"], "totalrowcount": 0}})
    pages = list(reportbuilder.iter_report_pages(caller, 1, perpage=5))
    assert [p.data.headers[0] for p in pages] == ["Course short name"]


def test_list_reports() -> None:
    caller = replaying("core_reportbuilder_list_reports", "success")
    [report] = reportbuilder.list_reports(caller)
    assert_sent_as_recorded(caller, "core_reportbuilder_list_reports", "success")
    assert (report.id, report.sourcename) == (1, "Course participants")
    assert report.conditiondata == '{"user:username_operator":8}'


# --- competency -----------------------------------------------------------------------------------
def test_list_competency_frameworks() -> None:
    caller = replaying("core_competency_list_competency_frameworks", "success")
    [framework] = competency.list_competency_frameworks(
        caller, competency.FrameworkQuery(context=api.Context(contextid=1), order="ASC")
    )
    assert_sent_as_recorded(caller, "core_competency_list_competency_frameworks", "success")
    assert (framework.id, framework.idnumber, framework.competenciescount) == (1, "KOMP-ASN", 3)


def test_list_competencies() -> None:
    caller = replaying("core_competency_list_competencies", "by_framework")
    found = competency.list_competencies(
        caller, {"competencyframeworkid": 1}, sort="sortorder", order="ASC"
    )
    assert_sent_as_recorded(caller, "core_competency_list_competencies", "by_framework")
    assert [c.idnumber for c in found] == ["KOMP-INTEGRITAS", "KOMP-KERJASAMA", "KOMP-MODERASI"]
    assert found[0].ruletype is None
    assert found[0].scaleid is None


def test_list_competencies_by_idnumber() -> None:
    caller = replaying("core_competency_list_competencies", "by_idnumber")
    [found] = competency.list_competencies(caller, {"idnumber": "KOMP-KERJASAMA"})
    sent = caller.sent[0].fields()
    recorded = case("core_competency_list_competencies", "by_idnumber")["request"]["params"]
    # The wrapper also sends Moodle's defaults for sorting and paging.
    assert recorded.items() <= sent.items()
    assert found.id == 2


def test_list_course_competencies() -> None:
    caller = replaying("core_competency_list_course_competencies", "success")
    found = competency.list_course_competencies(caller, 2)
    assert_sent_as_recorded(caller, "core_competency_list_course_competencies", "success")
    assert [(c.competency.idnumber, c.coursecompetency.ruleoutcome) for c in found] == [
        ("KOMP-INTEGRITAS", 1),
        ("KOMP-KERJASAMA", 1),
        ("KOMP-MODERASI", 1),
    ]


# --- every recorded success parses ----------------------------------------------------------------
_NEW_USER = users.NewUser(username="u", firstname="F", lastname="L", email="u@x.example")
_NEW_COHORT = cohorts.NewCohort(name="n", idnumber="i")

#: function -> how to run its wrapper on an answer (arguments do not matter here).
WRAPPERS: dict[str, Callable[[FakeCaller, Any], object]] = {
    "core_webservice_get_site_info": lambda c, r: site.get_site_info(c),
    "core_user_create_users": lambda c, r: users.create_users(c, [_NEW_USER] * len(r)),
    "core_user_update_users": lambda c, r: users.update_users(c, [users.UserUpdate(id=1)]),
    "core_user_get_users_by_field": lambda c, r: users.get_users_by_field(c, "id", [1]),
    "core_user_get_users": lambda c, r: users.get_users(c, {"id": 1}),
    "core_cohort_create_cohorts": lambda c, r: cohorts.create_cohorts(c, [_NEW_COHORT] * len(r)),
    "core_cohort_search_cohorts": lambda c, r: cohorts.search_cohorts(c, "q"),
    "core_cohort_get_cohorts": lambda c, r: cohorts.get_cohorts(c, [1]),
    "core_cohort_add_cohort_members": lambda c, r: cohorts.add_cohort_members(c, []),
    "core_cohort_delete_cohort_members": lambda c, r: cohorts.delete_cohort_members(c, []),
    "core_cohort_get_cohort_members": lambda c, r: cohorts.get_cohort_members(c, [1]),
    "core_course_get_courses_by_field": lambda c, r: courses.get_courses_by_field(c),
    "core_course_get_categories": lambda c, r: courses.get_categories(c),
    "enrol_manual_enrol_users": lambda c, r: enrol.enrol_users(c, []),
    "enrol_manual_unenrol_users": lambda c, r: enrol.unenrol_users(c, []),
    "core_enrol_get_enrolled_users": lambda c, r: enrol.get_enrolled_users(c, 1),
    "core_enrol_get_users_courses": lambda c, r: enrol.get_users_courses(c, 1),
    "core_enrol_get_course_enrolment_methods": lambda c, r: enrol.get_course_enrolment_methods(
        c, 1
    ),
    "core_completion_get_course_completion_status": lambda c, r: (
        completion.get_course_completion_status(c, 1, 1)
    ),
    "core_completion_get_activities_completion_status": lambda c, r: (
        completion.get_activities_completion_status(c, 1, 1)
    ),
    "core_reportbuilder_retrieve_report": lambda c, r: reportbuilder.retrieve_report(c, 1),
    "core_reportbuilder_list_reports": lambda c, r: reportbuilder.list_reports(c),
    "core_competency_list_competency_frameworks": lambda c, r: (
        competency.list_competency_frameworks(c)
    ),
    "core_competency_list_competencies": lambda c, r: competency.list_competencies(c, {}),
    "core_competency_list_course_competencies": lambda c, r: competency.list_course_competencies(
        c, 1
    ),
}


def _successes() -> list[Any]:
    params = []
    for directory in (RECORDINGS, RECORDINGS / "debug_normal"):
        for function in WRAPPERS:
            for item in _recording(function, directory)["cases"]:
                answer = item["response"]
                if isinstance(answer, dict) and "exception" in answer:
                    continue
                label = f"{directory.name}/{function}/{item['name']}"
                params.append(pytest.param(function, answer, id=label))
    return params


@pytest.mark.parametrize(("function", "answer"), _successes())
def test_every_recorded_success_parses(function: str, answer: Any) -> None:
    caller = FakeCaller(answer)
    WRAPPERS[function](caller, answer)
    assert [s.wsfunction for s in caller.sent] == [function]
