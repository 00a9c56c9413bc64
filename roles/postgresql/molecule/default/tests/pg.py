"""Shared by this scenario's test modules."""

PASSWORD = "molecule-db-Secret-1"


def psql(host, server, sql, password=PASSWORD, user="airflow"):
    """Run SQL as a client over TCP; returns the CommandResult."""
    return host.run(
        f"PGPASSWORD='{password}' PGCONNECT_TIMEOUT=5 psql -h {server} -U {user} -d airflow "
        f"-v ON_ERROR_STOP=1 -Atc \"{sql}\""
    )


def admin(host, sql):
    """Run SQL as the local postgres superuser (peer authentication)."""
    return host.check_output(f"runuser -u postgres -- psql -Atc \"{sql}\"")


def cluster_version(host):
    return host.check_output("pg_lsclusters --no-header | awk '$2 == \"main\" {print $1}'")
