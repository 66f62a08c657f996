"""The emulator is not a lookup table: the recorded behaviours hold in a different world.

``other_world()`` rebuilds the contract's seed with other ids and names: users +100, courses
+50, cohorts +20, enrolment instances +200, course contexts +500; other NIPs, names and
emails, other course shortnames/idnumbers, other cohort idnumbers, another site name and
wwwroot. Every reference is moved along (enrolments, completions, cohort members, cohort-sync
instances, competencies' courses, tokens, service users, site admins, report audiences). No
answer of the recordings can be right here unless it is computed from the emulator's state.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from moodle_bridge.emulator import Emulator

SEED = Path(__file__).parent / "recordings" / "_seed.json"

USER_SHIFT = 100
COURSE_SHIFT = 50
COHORT_SHIFT = 20
ENROL_SHIFT = 200
CONTEXT_SHIFT = 500

SITE_NAME = "Balai Diklat Keuangan Lain"
SITE_SHORTNAME = "bdkl"
WWWROOT = "https://lms.other-world.example/moodle"

#: New identities of the seed's fixture users, in seed order: (NIP, firstname, lastname).
NEW_PEOPLE = [
    ("200304052024121101", "Galih", "Permana"),
    ("200106072023112102", "Kartika", "Dewi"),
    ("199909092022101103", "Lukman", "Hakim"),
    ("200211112021092104", "Meilani", "Putri"),
    ("197012122000081105", "Oskar", "Simanjuntak"),
]
EMAIL_DOMAIN = "kemenkeu-lain.example"


def _uid(old: int) -> int:
    return old + USER_SHIFT


def _cid(old: int) -> int:
    return old + COURSE_SHIFT


def other_world(seed: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``seed`` with every id moved and every name changed."""
    world = copy.deepcopy(seed)
    settings = world["site_settings"]
    settings["wwwroot"] = WWWROOT
    settings["siteadmins"] = ",".join(str(_uid(int(u))) for u in settings["siteadmins"].split(","))
    world["site"]["frontpage_course"].update(fullname=SITE_NAME, shortname=SITE_SHORTNAME)

    # Users: new ids; fixture users get other NIPs, names, emails; service users other names.
    people = iter(NEW_PEOPLE)
    for user in world["users"]:
        user["id"] = _uid(user["id"])
        if user["kind"] == "fixture":
            nip, first, last = next(people)
            user.update(
                username=nip, idnumber=nip, firstname=first, lastname=last,
                email=f"{first.lower()}.{last.lower()}@{EMAIL_DOMAIN}",
            )
        elif user["kind"] == "service":
            user["firstname"] = f"Lain{user['firstname']}"
            user["email"] = f"{user['username']}@{EMAIL_DOMAIN}"
    world["service_user_ids"] = {k: _uid(v) for k, v in world["service_user_ids"].items()}
    for token in world["service"]["tokens"]:
        token["userid"] = _uid(token["userid"])
    for framework in world.get("competency_frameworks", []):
        framework["usermodified"] = _uid(framework["usermodified"])
    for report in world.get("reports", []):
        for audience in report.get("audiences", []):
            users = audience.get("configdata", {}).get("users")
            if users is not None:
                audience["configdata"]["users"] = [str(_uid(int(u))) for u in users]

    # Cohorts: new ids and idnumbers, members moved.
    cohort_idnumbers: dict[str, str] = {}
    for n, cohort in enumerate(world["cohorts"], start=1):
        new_idnumber = f"biro:LAIN{n}"
        cohort_idnumbers[cohort["idnumber"]] = new_idnumber
        cohort.update(
            id=cohort["id"] + COHORT_SHIFT, idnumber=new_idnumber, name=f"Biro Lain {n}",
            members=[_uid(u) for u in cohort["members"]],
        )

    # Courses: new ids, contexts, shortnames/idnumbers, enrolment instances, cohort sync.
    for course in world["courses"]:
        old_short = course["shortname"]
        new_short = f"LAT-{_cid(course['id']):03d}"
        course.update(
            id=_cid(course["id"]), shortname=new_short, idnumber=f"ID-{new_short}",
            fullname=f"Pelatihan Lain {new_short}", contextid=course["contextid"] + CONTEXT_SHIFT,
        )
        for instance in course["enrolment_instances"]:
            instance["id"] += ENROL_SHIFT
            if instance["enrol"] == "cohort":
                instance["cohortid"] += COHORT_SHIFT
                instance["cohort_idnumber"] = cohort_idnumbers[instance["cohort_idnumber"]]
        for cm in course.get("course_modules", []):
            if cm.get("idnumber"):
                cm["idnumber"] = cm["idnumber"].replace(old_short, new_short)
            cm["name"] = cm["name"].replace(old_short, new_short)
    for competency in world.get("competencies", []):
        competency["courseids"] = [_cid(c) for c in competency["courseids"]]

    for row in world["enrolments"]:
        row.update(userid=_uid(row["userid"]), courseid=_cid(row["courseid"]),
                   enrolid=row["enrolid"] + ENROL_SHIFT)
    for row in world["completions"]:
        row.update(userid=_uid(row["userid"]), courseid=_cid(row["courseid"]))
    return world


ORIGINAL = json.loads(SEED.read_text("utf-8"))
OTHER = other_world(ORIGINAL)
USERS = {u["id"]: u for u in OTHER["users"]}
COURSES = {c["id"]: c for c in OTHER["courses"]}
FIXTURES = [u for u in OTHER["users"] if u["kind"] == "fixture"]
MAX_USER_ID = max(USERS)


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(OTHER, clock=lambda: 1767225600.0)


def call(emulator: Emulator, wsfunction: str, params: dict[str, Any] | None = None,
         user: str = "bridge") -> Any:
    """Send one REST call as the service user ``user``; return the decoded JSON answer."""
    pairs = [("wstoken", emulator.token_for(user)), ("wsfunction", wsfunction),
             ("moodlewsrestformat", "json")]
    pairs += [(k, str(v)) for k, v in (params or {}).items()]
    reply = emulator.handle(pairs)
    assert reply.status == 200
    return json.loads(reply.body)


def new_user(n: int, *, email: str | None = None, idnumber: str | None = None) -> dict[str, str]:
    nip = f"20240101202501{n:04d}"
    user = {"username": nip, "firstname": "Peserta", "lastname": f"Lain {n}",
            "email": email or f"peserta{n}@{EMAIL_DOMAIN}", "password": "Passw0rd!"}
    if idnumber is not None:
        user["idnumber"] = idnumber
    return user


def users_params(users: list[dict[str, str]], key: str = "users") -> dict[str, str]:
    return {f"{key}[{i}][{k}]": v for i, u in enumerate(users) for k, v in u.items()}


def by_username(emulator: Emulator, *usernames: str) -> list[dict[str, Any]]:
    params = {f"values[{i}]": u for i, u in enumerate(usernames)}
    return call(emulator, "core_user_get_users_by_field", {"field": "username", **params})


def assert_invalidparameter(answer: Any) -> None:
    assert isinstance(answer, dict)
    assert answer.get("errorcode") == "invalidparameter", answer


# --- the transformed seed really is another world ---------------------------------------------
def test_other_world_shares_no_ids_or_names_with_the_seed() -> None:
    old_users = {u["id"] for u in ORIGINAL["users"]}
    old_courses = {c["id"] for c in ORIGINAL["courses"]}
    assert not old_users & set(USERS)
    assert not old_courses & set(COURSES)
    old_names = {u["username"] for u in ORIGINAL["users"] if u["kind"] == "fixture"}
    assert not old_names & {u["username"] for u in FIXTURES}
    assert not {c["shortname"] for c in ORIGINAL["courses"]} & {
        c["shortname"] for c in COURSES.values()}
    # Every reference points into the new world.
    for row in OTHER["enrolments"]:
        assert row["userid"] in USERS
        assert row["courseid"] in COURSES
        course = COURSES[row["courseid"]]
        assert row["enrolid"] in {i["id"] for i in course["enrolment_instances"]}
    cohort_ids = {c["id"] for c in OTHER["cohorts"]}
    for cohort in OTHER["cohorts"]:
        assert set(cohort["members"]) <= set(USERS)
    for token in OTHER["service"]["tokens"]:
        assert USERS[token["userid"]]["username"] == token["token_user"]
    syncs = [
        i for c in COURSES.values() for i in c["enrolment_instances"] if i["enrol"] == "cohort"
    ]
    assert syncs
    assert all(i["cohortid"] in cohort_ids for i in syncs)


# --- site info --------------------------------------------------------------------------------
def test_site_info_reflects_the_new_site_and_user(emulator: Emulator) -> None:
    bridge = next(u for u in USERS.values() if u["username"] == "bridge")
    info = call(emulator, "core_webservice_get_site_info")
    assert info["sitename"] == SITE_NAME
    assert info["siteurl"] == WWWROOT
    assert info["userid"] == bridge["id"] == 103
    assert info["username"] == "bridge"
    assert info["firstname"] == bridge["firstname"] == "LainBridge"
    assert info["fullname"] == f"{bridge['firstname']} {bridge['lastname']}"
    assert info["userpictureurl"].startswith(f"{WWWROOT}/theme/image.php/")
    admin = call(emulator, "core_webservice_get_site_info", user="admin")
    assert admin["userid"] == 102
    assert admin["userissiteadmin"] is True
    assert info["userissiteadmin"] is False


# --- core_user_create_users -------------------------------------------------------------------
def test_create_users_ids_continue_from_the_new_max_id(emulator: Emulator) -> None:
    created = call(emulator, "core_user_create_users", users_params([new_user(1), new_user(2)]))
    assert created == [
        {"id": MAX_USER_ID + 1, "username": new_user(1)["username"]},
        {"id": MAX_USER_ID + 2, "username": new_user(2)["username"]},
    ]


def test_create_users_is_all_or_nothing(emulator: Emulator) -> None:
    batch = [new_user(1), new_user(2, email="not-an-email"), new_user(3)]
    assert_invalidparameter(call(emulator, "core_user_create_users", users_params(batch)))
    assert by_username(emulator, *(u["username"] for u in batch)) == []
    # The same batch without the bad email goes through: all three are created.
    batch[1] = new_user(2)
    created = call(emulator, "core_user_create_users", users_params(batch))
    assert [c["username"] for c in created] == [u["username"] for u in batch]
    assert all(c["id"] > MAX_USER_ID for c in created)
    assert len(by_username(emulator, *(u["username"] for u in batch))) == 3


def test_create_users_rejects_a_seeded_email_in_another_case(emulator: Emulator) -> None:
    taken = FIXTURES[0]["email"]
    answer = call(emulator, "core_user_create_users",
                  users_params([new_user(5, email=taken.upper())]))
    assert_invalidparameter(answer)
    assert by_username(emulator, new_user(5)["username"]) == []
    # The email of the original seed's user is free in this world.
    old_email = next(u for u in ORIGINAL["users"] if u["kind"] == "fixture")["email"]
    created = call(emulator, "core_user_create_users", users_params([new_user(5, email=old_email)]))
    assert created == [{"id": MAX_USER_ID + 1, "username": new_user(5)["username"]}]


def test_duplicate_idnumber_is_accepted_and_found(emulator: Emulator) -> None:
    renamed = FIXTURES[1]
    created = call(emulator, "core_user_create_users",
                   users_params([new_user(7, idnumber=renamed["idnumber"])]))
    assert created == [{"id": MAX_USER_ID + 1, "username": new_user(7)["username"]}]
    found = call(emulator, "core_user_get_users_by_field",
                 {"field": "idnumber", "values[0]": renamed["idnumber"]})
    assert sorted((u["id"], u["username"]) for u in found) == [
        (renamed["id"], renamed["username"]), (MAX_USER_ID + 1, new_user(7)["username"])]


# --- core_user_get_users_by_field / core_user_update_users ------------------------------------
def test_get_users_by_field_finds_the_renamed_users(emulator: Emulator) -> None:
    for person in FIXTURES:
        found = call(emulator, "core_user_get_users_by_field",
                     {"field": "idnumber", "values[0]": person["idnumber"]})
        assert len(found) == 1
        got = found[0]
        assert (got["id"], got["username"], got["firstname"], got["lastname"], got["email"]) == (
            person["id"], person["username"], person["firstname"], person["lastname"],
            person["email"])
    old_nip = next(u for u in ORIGINAL["users"] if u["kind"] == "fixture")["idnumber"]
    assert call(emulator, "core_user_get_users_by_field",
                {"field": "idnumber", "values[0]": old_nip}) == []
    # Emails match case-sensitively on lookup.
    assert call(emulator, "core_user_get_users_by_field",
                {"field": "email", "values[0]": FIXTURES[0]["email"].upper()}) == []


def test_update_users_warns_per_item_and_updates_the_rest(emulator: Emulator) -> None:
    first, second = FIXTURES[0], FIXTURES[1]
    ghost = MAX_USER_ID + 1000
    answer = call(emulator, "core_user_update_users", {
        "users[0][id]": first["id"], "users[0][firstname]": "Diubah",
        "users[1][id]": ghost, "users[1][firstname]": "Ghost",
        "users[2][id]": second["id"], "users[2][email]": first["email"].upper(),
        "users[3][id]": second["id"], "users[3][lastname]": "Baru",
        "users[4][id]": FIXTURES[2]["id"], "users[4][idnumber]": first["idnumber"],
    })
    assert answer == {"warnings": [
        {"item": "user", "itemid": ghost, "warningcode": "invaliduserid",
         "message": "Invalid user ID"},
        {"item": "user", "itemid": second["id"], "warningcode": "useremailduplicate",
         "message": "Duplicate address"},
    ]}
    got = {u["id"]: u for u in by_username(emulator, first["username"], second["username"])}
    assert got[first["id"]]["firstname"] == "Diubah"
    assert got[second["id"]]["email"] == second["email"]
    assert got[second["id"]]["lastname"] == "Baru"
    # A duplicate idnumber is accepted on update too.
    shared = call(emulator, "core_user_get_users_by_field",
                  {"field": "idnumber", "values[0]": first["idnumber"]})
    assert sorted(u["id"] for u in shared) == [first["id"], FIXTURES[2]["id"]]


# --- cohorts ----------------------------------------------------------------------------------
def _cohort_members(emulator: Emulator, cohortid: int) -> set[int]:
    answer = call(emulator, "core_cohort_get_cohort_members", {"cohortids[0]": cohortid},
                  user="admin")
    return set(answer[0]["userids"])


def test_cohort_add_members_warns_per_item(emulator: Emulator) -> None:
    cohort = OTHER["cohorts"][0]
    member = USERS[cohort["members"][0]]
    outsider = next(u for u in FIXTURES if u["id"] not in cohort["members"])
    answer = call(emulator, "core_cohort_add_cohort_members", {
        "members[0][cohorttype][type]": "idnumber",
        "members[0][cohorttype][value]": cohort["idnumber"],
        "members[0][usertype][type]": "username",
        "members[0][usertype][value]": member["username"],
        "members[1][cohorttype][type]": "id",
        "members[1][cohorttype][value]": cohort["id"],
        "members[1][usertype][type]": "id",
        "members[1][usertype][value]": outsider["id"],
        "members[2][cohorttype][type]": "id",
        "members[2][cohorttype][value]": cohort["id"] - COHORT_SHIFT,
        "members[2][usertype][type]": "id",
        "members[2][usertype][value]": outsider["id"],
    })
    assert answer == {"warnings": [
        {"warningcode": "3", "message": "record already exists: cohort(idnumber="
         f"{cohort['idnumber']} username={member['username']})"},
        {"warningcode": "2", "message": f"cohort id={cohort['id'] - COHORT_SHIFT} not exists"},
    ]}
    assert _cohort_members(emulator, cohort["id"]) == {*cohort["members"], outsider["id"]}


def test_adding_to_the_synced_cohort_enrols_in_its_course(emulator: Emulator) -> None:
    course = next(c for c in COURSES.values()
                  if any(i["enrol"] == "cohort" for i in c["enrolment_instances"]))
    sync = next(i for i in course["enrolment_instances"] if i["enrol"] == "cohort")
    cohort = next(c for c in OTHER["cohorts"] if c["id"] == sync["cohortid"])
    outsider = next(u for u in FIXTURES if u["id"] not in cohort["members"])

    def course_ids() -> list[int]:
        courses = call(emulator, "core_enrol_get_users_courses", {"userid": outsider["id"]})
        return [c["id"] for c in courses]

    assert course["id"] not in course_ids()
    answer = call(emulator, "core_cohort_add_cohort_members", {
        "members[0][cohorttype][type]": "idnumber",
        "members[0][cohorttype][value]": cohort["idnumber"],
        "members[0][usertype][type]": "username",
        "members[0][usertype][value]": outsider["username"],
    })
    assert answer == {"warnings": []}
    assert course["id"] in course_ids()
    # Removing the member unenrols them again.
    call(emulator, "core_cohort_delete_cohort_members",
         {"members[0][cohortid]": cohort["id"], "members[0][userid]": outsider["id"]})
    assert course["id"] not in course_ids()


# --- enrolments -------------------------------------------------------------------------------
def _enrolled(emulator: Emulator, courseid: int) -> dict[int, list[int]]:
    answer = call(emulator, "core_enrol_get_enrolled_users", {
        "courseid": courseid, "options[0][name]": "userfields",
        "options[0][value]": "id,username,roles"}, user="admin")
    return {u["id"]: sorted(r["roleid"] for r in u["roles"]) for u in answer}


def test_enrol_manual_enrol_users_is_atomic_and_idempotent(emulator: Emulator) -> None:
    course = COURSES[_cid(3)]
    enrolled_before = _enrolled(emulator, course["id"])
    a, b = [u for u in FIXTURES if u["id"] not in enrolled_before][:2]
    ghost = MAX_USER_ID + 1000
    answer = call(emulator, "enrol_manual_enrol_users", {
        "enrolments[0][roleid]": 5, "enrolments[0][userid]": a["id"],
        "enrolments[0][courseid]": course["id"],
        "enrolments[1][roleid]": 5, "enrolments[1][userid]": ghost,
        "enrolments[1][courseid]": course["id"],
        "enrolments[2][roleid]": 5, "enrolments[2][userid]": b["id"],
        "enrolments[2][courseid]": course["id"],
    })
    assert answer["errorcode"] == "invaliduser"
    assert _enrolled(emulator, course["id"]) == enrolled_before

    single = {"enrolments[0][roleid]": 5, "enrolments[0][userid]": a["id"],
              "enrolments[0][courseid]": course["id"]}
    assert call(emulator, "enrol_manual_enrol_users", single) is None
    assert _enrolled(emulator, course["id"]) == {**enrolled_before, a["id"]: [5]}
    assert call(emulator, "enrol_manual_enrol_users", single) is None
    assert _enrolled(emulator, course["id"]) == {**enrolled_before, a["id"]: [5]}
    # The original seed's course id does not exist here.
    answer = call(emulator, "enrol_manual_enrol_users", {**single, "enrolments[0][courseid]": 3})
    assert_invalidparameter(answer)


# --- completions ------------------------------------------------------------------------------
def test_users_courses_shows_seeded_completion_under_new_ids(emulator: Emulator) -> None:
    for row in OTHER["completions"]:
        courses = {c["id"]: c for c in call(emulator, "core_enrol_get_users_courses",
                                             {"userid": row["userid"]})}
        done = courses[row["courseid"]]
        assert done["completed"] is True
        assert done["progress"] == 100
        course = COURSES[row["courseid"]]
        assert done["shortname"] == course["shortname"]
        assert done["idnumber"] == course["idnumber"]
        assert done["courseimage"] == (
            f"{WWWROOT}/pluginfile.php/{course['contextid']}/course/generated/course.svg")
        others = [c for cid, c in courses.items() if cid != row["courseid"]]
        assert all(c["completed"] is not True for c in others)


# --- max_input_vars ---------------------------------------------------------------------------
def test_max_input_vars_cuts_a_create_of_1000_users_to_833(emulator: Emulator) -> None:
    users = [new_user(n, idnumber=f"20240101202501{n:04d}") for n in range(1000)]
    assert all(len(u) == 6 for u in users)
    created = call(emulator, "core_user_create_users", users_params(users))
    assert isinstance(created, list)
    assert len(created) == 833
    assert [c["id"] for c in created] == list(range(MAX_USER_ID + 1, MAX_USER_ID + 834))
    assert created[-1]["username"] == users[832]["username"]
    assert by_username(emulator, users[833]["username"]) == []
