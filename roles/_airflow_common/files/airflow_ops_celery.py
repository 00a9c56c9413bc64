# Copyright: airflow_ops.celery contributors
# Apache License 2.0 (see galaxy.yml)
"""The Celery app's settings, which airflow.cfg names by import path ([celery] celery_config_options).

Installed by airflow_ops.celery as /opt/airflow/config/airflow_ops_celery.py (root's, read-only for
the components; Airflow puts AIRFLOW_HOME/config on sys.path). Airflow's own settings
(DEFAULT_CELERY_CONFIG, built from airflow.cfg and, on a worker, its unit's extra config) plus what
airflow.cfg cannot say:

- TCP keepalive and a user timeout, per connection, on every broker and Sentinel connection. A
  broker host that stops (power, kernel, network) closes nothing: a consumer waiting for its BRPOP
  reply, or a producer whose command was never acknowledged, would wait for the kernel's defaults
  (two hours of keepalive, about 15 minutes of retransmissions). With these a dead connection fails
  within about 15 s, and Celery reconnects: through the Sentinels, to the new primary. The options
  are socket option numbers, which airflow.cfg's string values cannot carry.
- broker_channel_error_retry: a command that a demoted primary refuses (READONLY) is retried on a
  new connection instead of failing the consumer (celery/celery#7946).
- No reconnect inside a pub/sub read (redis-py's PubSub._execute retries a failed read on a new
  connection, by default). kombu reads its pub/sub connection (remote control broadcasts) from the
  worker's event loop, with no timeout, when the poller says it is readable. When the primary was
  lost, that read failed, redis-py reconnected to the new primary through the Sentinels and read
  again: on a connection where nothing arrives until someone broadcasts, so the event loop waited
  there and the worker took no task (seen in the cluster scenario's failover drills: py-spy showed
  the worker's main thread in PubSub.parse_response -> Retry.call_with_retry, failures 1, in an SSL
  read; celery/celery#6348). Without the retry the error reaches kombu, and Celery's consumer
  reconnects all its connections, as it does for any lost broker connection.
"""

import socket

import redis.client
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

# Probe after 5 s of silence, every 2 s, give up after 3 unanswered; data unacknowledged for 10 s
# fails the connection as well.
KEEPALIVE = {socket.TCP_KEEPIDLE: 5, socket.TCP_KEEPINTVL: 2, socket.TCP_KEEPCNT: 3}
if hasattr(socket, "TCP_USER_TIMEOUT"):
    KEEPALIVE[socket.TCP_USER_TIMEOUT] = 10000


def with_keepalive(options):
    return dict(options, socket_keepalive=True, socket_keepalive_options=dict(KEEPALIVE))


TRANSPORT_OPTIONS = with_keepalive(DEFAULT_CELERY_CONFIG.get("broker_transport_options") or {})
if isinstance(TRANSPORT_OPTIONS.get("sentinel_kwargs"), dict):
    TRANSPORT_OPTIONS["sentinel_kwargs"] = with_keepalive(TRANSPORT_OPTIONS["sentinel_kwargs"])

CELERY_CONFIG = dict(DEFAULT_CELERY_CONFIG, broker_transport_options=TRANSPORT_OPTIONS, broker_channel_error_retry=True)


def _execute_once(self, conn, command, *args, **kwargs):
    """redis.client.PubSub._execute without its retry: reconnect only where the connection asks to
    (should_reconnect), then run the command once; a connection error goes to the caller."""
    if getattr(conn, "should_reconnect", lambda: False)():
        self._reconnect(conn)
    return command(*args, **kwargs)


redis.client.PubSub._execute = _execute_once
