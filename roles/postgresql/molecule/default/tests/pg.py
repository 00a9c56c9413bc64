"""Shared by this scenario's test modules."""

PASSWORD = "molecule-db-Secret-1"
RESULT_BACKEND_PASSWORD = "molecule-results-Secret-2"

# (user, database, password) of the two logins the scenario's inventory sets up.
METADATA = ("airflow", "airflow", PASSWORD)
RESULT_BACKEND = ("airflow_celery", "airflow_celery", RESULT_BACKEND_PASSWORD)


def psql(host, server, sql, password=PASSWORD, user="airflow", database="airflow"):
    """Run SQL as a client over TCP; returns the CommandResult."""
    return host.run(
        f"PGPASSWORD='{password}' PGCONNECT_TIMEOUT=5 psql -h {server} -U {user} -d {database} "
        f"-v ON_ERROR_STOP=1 -Atc \"{sql}\""
    )


def admin(host, sql):
    """Run SQL as the local postgres superuser (peer authentication)."""
    return host.check_output(f"runuser -u postgres -- psql -Atc \"{sql}\"")


def cluster_version(host):
    return host.check_output("pg_lsclusters --no-header | awk '$2 == \"main\" {print $1}'")
