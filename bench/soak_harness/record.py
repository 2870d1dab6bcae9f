"""What the run did and saw, written from many threads, read by the invariants at the end."""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Response:
    action: str
    organization: str
    method: str
    path: str
    status: int | None  # None: no answer (connection refused or reset, timed out)
    at: float
    prompt: str = ""
    idempotency_key: str = ""
    replayed: bool = False
    rate_limit_reset: str = ""
    rate_limit_limit: str = ""
    body: str = ""
    submission: bool = False


@dataclass
class Receipt:
    receiver: str
    path: str
    webhook_id: str
    payload: dict | None
    answered: int | None
    at: float


@dataclass
class Violation:
    invariant: str
    evidence: str


@dataclass
class Record:
    responses: list = field(default_factory=list)
    receipts: list = field(default_factory=list)
    faults: list = field(default_factory=list)  # (kind, at)
    purchases: list = field(default_factory=list)  # dicts: organization, token, outcome, at
    cancels: list = field(default_factory=list)  # (job public id, status code)
    violations: list = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def response(self, **fields) -> Response:
        entry = Response(at=time.time(), **fields)
        with self.lock:
            self.responses.append(entry)
        return entry

    def receipt(self, **fields) -> None:
        with self.lock:
            self.receipts.append(Receipt(at=time.time(), **fields))

    def fault(self, kind: str) -> None:
        with self.lock:
            self.faults.append((kind, time.time()))

    def purchase(self, **fields) -> None:
        with self.lock:
            self.purchases.append({**fields, "at": time.time()})

    def cancel(self, job_id: str, status: int | None) -> None:
        with self.lock:
            self.cancels.append((job_id, status))

    def count(self, name: str, by: int = 1) -> None:
        with self.lock:
            self.counts[name] += by

    def violation(self, invariant: str, evidence: str) -> None:
        with self.lock:
            self.violations.append(Violation(invariant, evidence))
