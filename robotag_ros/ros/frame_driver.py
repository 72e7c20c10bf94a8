"""Publish frames to the estimator node and collect its answer to each one.

The one driver behind the sample player (robotag_ros.ros.sample_player), the node tests
(test/ros_harness.py) and the latency benchmark (benchmarks/node_latency.py). The node keeps only
the newest frame, so a driver that needs every frame inferred waits for the node's /diagnostics
status for a frame's stamp (``ESTIMATOR_DIAGNOSTIC_NAME``) before it sends the next one (pace
``answer``); pace ``rate`` publishes like a live camera and lets the node drop what it cannot
keep up with. The caller keeps DDS local (robotag_ros.harness.local_dds.local_ros_env).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from robotag_ros.ros.messages import ESTIMATOR_DIAGNOSTIC_NAME
from robotag_ros.stamps import stamp_key, stamp_to_ns

PACES = ('answer', 'rate')
# A resent CameraInfo gets this long to arrive before its image (DDS matching can lose the
# first message on a new subscription while the image, sent later, gets through).
RESEND_SETTLE_S = 0.1


@dataclass
class DriverFrame:
    """One frame to send: its image, the CameraInfo sent just before it (or None), and how long
    to let that CameraInfo arrive first (seconds)."""

    image: Image
    camera_info: Optional[CameraInfo] = None
    settle_s: float = 0.0

    @property
    def key(self) -> str:
        """The frame's stamp key (robotag_ros.stamps), which the node's answer carries."""
        return stamp_key(stamp_to_ns(self.image.header.stamp))


class FrameDriver:
    """Publishers for the node's image and camera_info topics, and its /diagnostics answers.

    ``answers`` maps a frame's stamp key to the estimator's status for it: ``level``,
    ``message``, ``values`` (key -> value strings) and ``received_s`` (time.monotonic()).
    """

    def __init__(self, node, image_topic: str, camera_info_topic: str):
        self.node = node
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_publisher = node.create_publisher(Image, image_topic, qos)
        self.camera_info_publisher = node.create_publisher(CameraInfo, camera_info_topic, qos)
        self.answers: dict[str, dict] = {}
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name == ESTIMATOR_DIAGNOSTIC_NAME:
                self.answers[stamp_key(stamp_to_ns(message.header.stamp))] = {
                    'level': int.from_bytes(status.level, 'little'),
                    'message': status.message,
                    'values': {kv.key: kv.value for kv in status.values},
                    'received_s': time.monotonic()}

    def spin_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until ``done()`` or the timeout; whether it is done."""
        end = time.monotonic() + timeout_s
        while not done():
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            rclpy.spin_once(self.node, timeout_sec=min(0.02, remaining))
        return True

    def wait_for_node(self, timeout_s: float, need_answers: bool = True,
                      alive: Callable[[], bool] = lambda: True) -> None:
        """Until the node subscribes to both topics (and publishes /diagnostics, when answers
        are awaited). TimeoutError when it does not within ``timeout_s``, RuntimeError when
        ``alive()`` turns false meanwhile (its process exited)."""
        def discovered() -> bool:
            if not alive():
                raise RuntimeError('the estimator node exited')
            return (self.image_publisher.get_subscription_count() > 0
                    and self.camera_info_publisher.get_subscription_count() > 0
                    and (not need_answers or self.node.count_publishers('/diagnostics') > 0))
        if not self.spin_until(discovered, timeout_s):
            raise TimeoutError(f'no estimator node on {self.image_publisher.topic_name} within '
                               f'{timeout_s:g} s: is it running?')

    def send(self, frame: DriverFrame, settle_s: float = 0.0) -> float:
        """Publish the frame's CameraInfo (then spin ``settle_s``) and its image; the monotonic
        time the image was published."""
        if frame.camera_info is not None:
            self.camera_info_publisher.publish(frame.camera_info)
            end = time.monotonic() + settle_s
            self.spin_until(lambda: time.monotonic() >= end, settle_s + 1.0)
        sent_s = time.monotonic()
        self.image_publisher.publish(frame.image)
        return sent_s

    def play(self, frames: Iterable[DriverFrame], pace: str = 'answer', rate_hz: float = 15.0,
             answer_timeout_s: float = 30.0, attempts: int = 2,
             resend: Callable[[DriverFrame, dict], bool] = lambda frame, answer: False,
             drain_s: float = 0.5, give_up_after: int = 0) -> list[dict]:
        """Send every frame; one record per frame: ``index``, ``stamp``, ``sent_s``,
        ``attempts``, ``answer`` (None when none came) and ``round_trip_ms`` (publish ->
        answer received).

        Pace ``answer``: each frame waits up to ``answer_timeout_s`` for its answer, and is sent
        again (up to ``attempts`` sends) when none came or ``resend(frame, answer)`` says so;
        with ``give_up_after`` > 0, that many frames in a row without an answer raise
        RuntimeError (the node is gone or stuck: no point waiting out every frame). Pace
        ``rate``: frames go out at ``rate_hz`` without waiting; answers are collected for
        ``drain_s`` after the last one.
        """
        if pace not in PACES:
            raise ValueError(f'pace must be one of {PACES}, not {pace!r}')
        records, next_send, unanswered = [], time.monotonic(), 0
        for index, frame in enumerate(frames):
            key, sent_s, attempt, answer = frame.key, None, 0, None
            for attempt in range(1, (attempts if pace == 'answer' else 1) + 1):
                if pace == 'rate':   # a camera does not wait for the node
                    self.spin_until(lambda: time.monotonic() >= next_send, 1.0 / rate_hz + 1.0)
                    next_send += 1.0 / rate_hz
                self.answers.pop(key, None)
                settle_s = (frame.settle_s if attempt == 1
                            else max(frame.settle_s, RESEND_SETTLE_S))
                sent_s = self.send(frame, settle_s)
                if pace == 'rate':
                    break
                self.spin_until(lambda: key in self.answers, answer_timeout_s)
                answer = self.answers.get(key)
                if answer is not None and not (attempt < attempts and resend(frame, answer)):
                    break
            records.append({'index': index, 'stamp': key, 'sent_s': sent_s,
                            'attempts': attempt})
            if pace == 'answer':
                unanswered = 0 if answer is not None else unanswered + 1
                if give_up_after and unanswered >= give_up_after:
                    raise RuntimeError(f'{unanswered} frames in a row got no answer from the '
                                       'node')
        keys = [record['stamp'] for record in records]
        self.spin_until(lambda: all(key in self.answers for key in keys), drain_s)
        for record in records:
            answer = self.answers.get(record['stamp'])
            record['answer'] = answer
            record['round_trip_ms'] = (None if answer is None
                                       else (answer['received_s'] - record['sent_s']) * 1e3)
        return records
