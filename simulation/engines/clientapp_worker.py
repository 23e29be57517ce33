"""One long-lived ClientApp process per SuperNode (`flower-supernode --isolation process`).

Flower's SuperExec starts a new `flwr-clientapp` process for every message, so under the
deployment engine every NSO starts five processes per SecAgg+ round: about 1 s each for the key
stages and 5-6 s for training and evaluation, which import torch and Opacus and read the data
(docs/deployment.md). This worker takes the SuperExec's place beside one SuperNode: it acquires
the node's ClientApp tasks through the same Runtime API and runs each in this one process, so the
FAB is installed and the ClientApp loaded once per run and torch once per process. A task runs as
`flwr-clientapp` runs it, with Flower's own functions (flwr/supernode/runtime/run_clientapp.py:
pull the task input, call the ClientApp, push the reply, then the task output with the updated
Context, a heartbeat meanwhile) and a sooner retry of objects not there yet
(clients/object_retry.py), without the process exit at its end; a ClientApp that raises is
answered with an Error reply, as there. The worker ends with its SuperNode (parent PID monitor) or by SIGTERM.

    python -m simulation.engines.clientapp_worker --runtime-api-address 127.0.0.1:PORT --parent-pid PID
"""

from __future__ import annotations

import argparse
import time
from logging import ERROR, INFO

from flwr.app import Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.constant import ErrorCode, SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
from flwr.supercore import log
from flwr.supercore.app_utils import start_parent_process_monitor
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.logger import update_console_handler
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime import run_clientapp
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

from clients.object_retry import retry_objects_sooner

# fab hash -> the loaded ClientApp; one run's app is loaded once
_APPS: dict[str, ClientApp] = {}


def _client(address: str, *interceptors) -> RuntimeHttpClient:
    return RuntimeHttpClient.from_server_address(server_address=address, insecure=True, root_certificates=None,
                                                 interceptors=list(interceptors),
                                                 retry_invoker=make_simple_http_retry_invoker())


def _client_app(run, fab) -> ClientApp:
    if fab.hash_str not in _APPS:
        install_from_fab(fab.content, skip_prompt=True)
        load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
        _APPS[fab.hash_str] = load(run.fab_id, run.fab_version, fab.hash_str)
    return _APPS[fab.hash_str]


def run_task(address: str, token: str) -> None:
    """Run one ClientApp task in this process; its outcome goes to the SuperNode as the task output."""
    client = _client(address, RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                     RuntimeTokenHttpInterceptor(token))
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
    heartbeat.start()
    message = context = reply = None
    status, details = SubStatus.FAILED, "ClientApp task failed due to unknown reason"
    marks = [("start", time.perf_counter())]  # phase times in the log: where a deployment round goes
    try:
        message, context, run, fab = pull_task_input(client)
        marks.append(("input", time.perf_counter()))
        reply = _client_app(run, fab)(message=message, context=context)
        marks.append(("app", time.perf_counter()))
        status, details = SubStatus.COMPLETED, ""
    except Exception as ex:  # the reply names the failure, as flwr-clientapp's does
        code = ErrorCode.LOAD_CLIENT_APP_EXCEPTION if isinstance(ex, LoadClientAppError) \
            else ErrorCode.CLIENT_APP_RAISED_EXCEPTION
        details = f"{type(ex)}:<'{ex}'>"
        log(ERROR, "ClientApp raised an exception", exc_info=ex)
        if message is not None:
            reply = Message(Error(code=code, reason=details), reply_to=message)
    finally:
        try:
            if reply is not None and context is not None:
                push_message(client, reply, context)
                marks.append(("reply", time.perf_counter()))
        finally:
            push_task_output(client, context, status, details)
            marks.append(("output", time.perf_counter()))
            heartbeat.stop()
            client.close()
            kind = message.metadata.message_type if message is not None else "?"
            log(INFO, "task %s (%s): %s", kind, status, ", ".join(
                f"{name} {t - prev:.3f} s" for (_, prev), (name, t) in zip(marks, marks[1:])))


def serve(address: str, poll_s: float) -> None:
    """Acquire this SuperNode's ClientApp tasks one at a time, forever."""
    client = _client(address, RuntimeVersionHttpInterceptor(component_name="SuperExec"))
    log(INFO, "persistent ClientApp worker on %s", address)
    while True:
        res = client.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP]))
        if res.HasField("task") and res.token:
            run_task(address, res.token)
        else:
            time.sleep(poll_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API, host:port")
    p.add_argument("--parent-pid", type=int, help="end when this process (the SuperNode) ends")
    p.add_argument("--poll-s", type=float, default=0.05, help="wait between task polls when idle")
    a = p.parse_args()
    update_console_handler(timestamps=True, colored=False)  # its log is a file: when, not colours
    # the task's message is offered before its objects have arrived: ask again soon, not after 1 s
    retry_objects_sooner(run_clientapp, "pull_and_inflate_object_from_tree")
    if a.parent_pid is not None:
        start_parent_process_monitor(a.parent_pid)
    serve(a.runtime_api_address, a.poll_s)


if __name__ == "__main__":
    main()
