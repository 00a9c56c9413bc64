"""Create, update or remove FAB auth manager users from a JSON list on standard input.

Run by airflow_ops.celery (_airflow_common, entry point migrate) as the airflow user with the
virtualenv's Python. Input: [{"username", "password", "role", "email", "first_name", "last_name",
"state": "present"|"absent"}, ...]; email and the names are optional. Passwords come on stdin,
never on the command line. Users not in the list are left alone.
The last line of output is JSON: {"changed": ["<username>: <what>", ...]}.
"""

import json
import sys

from werkzeug.security import check_password_hash

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder


def apply(sm, wanted):
    changed = []
    for user in wanted:
        name = user["username"]
        user = {"email": f"{name}@localhost", "first_name": name, "last_name": "-", **user}
        existing = sm.find_user(username=name)
        if user.get("state", "present") == "absent":
            if existing is not None:
                sm.del_register_user(existing)
                changed.append(f"{name}: removed")
            continue
        role = sm.find_role(user["role"])
        if role is None:
            names = sorted(r.name for r in sm.get_all_roles())
            raise SystemExit(f"{name}: role {user['role']!r} does not exist (roles: {', '.join(names)})")
        if existing is None:
            if not sm.add_user(
                username=name,
                first_name=user["first_name"],
                last_name=user["last_name"],
                email=user["email"],
                role=role,
                password=user["password"],
            ):
                raise SystemExit(f"{name}: could not be created (is {user['email']} used by another user?)")
            changed.append(f"{name}: created")
            continue
        what = []
        if [r.name for r in existing.roles] != [role.name]:
            existing.roles = [role]
            what.append("role")
        for field in ("email", "first_name", "last_name"):
            if getattr(existing, field) != user[field]:
                setattr(existing, field, user[field])
                what.append(field)
        if not existing.active:
            existing.active = True
            what.append("active")
        if what:
            sm.update_user(existing)
        if not check_password_hash(existing.password, user["password"]):
            sm.reset_password(existing.id, user["password"])
            what.append("password")
        if what:
            changed.append(f"{name}: {', '.join(what)}")
    return changed


def main():
    wanted = json.load(sys.stdin)
    with get_application_builder() as appbuilder:
        changed = apply(appbuilder.sm, wanted)
    print(json.dumps({"changed": changed}))


if __name__ == "__main__":
    main()
