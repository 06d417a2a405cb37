"""Import of an existing MFLIX ``users`` collection export.

Accepts JSON Lines or one JSON array, in plain or MongoDB Extended JSON
(as written by ``mongoexport``). Records are keyed by their email key, so
running an import twice adds nothing the second time. A record whose
password is not a bcrypt hash is imported locked, with no password at all:
its value is never stored and can never log in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import ObjectId, json_util
from bson.errors import InvalidId

from services.common.clock import utc_now
from services.common.emails import InvalidEmail, email_key

from .passwords import is_bcrypt_hash
from .store import CredentialDocument, UserDocument, UserStore
from .users import new_credential

logger = logging.getLogger("mflix.identity.importer")

LOCK_REASON = "imported without a usable bcrypt hash"


@dataclass
class ImportReport:
    usable: int = 0
    locked: int = 0
    new: int = 0
    existing: int = 0
    invalid: list[str] = field(default_factory=list)

    def summary(self) -> str:
        total = self.usable + self.locked + len(self.invalid)
        return (
            f"read {total} records: {self.usable} usable, {self.locked} locked, "
            f"{len(self.invalid)} invalid; "
            f"{self.new} new, {self.existing} already present"
        )


class ImportFileError(ValueError):
    pass


def read_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (record number, decoded record) from a JSON array or JSON Lines file."""
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        try:
            records = json_util.loads(text)
        except ValueError as error:
            raise ImportFileError(f"{path}: not a valid JSON array: {error}") from error
        yield from enumerate(records, start=1)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json_util.loads(line)
        except ValueError as error:
            yield number, error


def _user_id(raw: object) -> ObjectId:
    if isinstance(raw, ObjectId):
        return raw
    if isinstance(raw, str):
        try:
            return ObjectId(raw)
        except InvalidId:
            pass
    return ObjectId()


def user_documents(record: dict[str, Any]) -> tuple[UserDocument, CredentialDocument]:
    """Build the user and first credential of one export record.

    Raises ValueError when the record has no usable email address.
    """
    email = record.get("email")
    if not isinstance(email, str):
        raise ValueError("email is missing or not a string")
    name = record.get("name")
    now = utc_now()
    user_id = _user_id(record.get("_id"))
    user: dict[str, Any] = {
        "_id": user_id,
        "name": name.strip() if isinstance(name, str) and name.strip() else email,
        "email": email.strip(),
        "email_key": email_key(email.strip()),
        "created_at": now,
        "imported_at": now,
    }
    password = record.get("password")
    if is_bcrypt_hash(password):
        credential = new_credential(
            str(user_id), 1, password_hash=str(password), kind="imported"
        )
    else:
        credential = new_credential(
            str(user_id),
            1,
            password_hash=None,
            kind="imported",
            locked_reason=LOCK_REASON,
        )
    return user, credential


async def import_users(store: UserStore, path: Path) -> ImportReport:
    report = ImportReport()
    for number, record in read_records(path):
        if not isinstance(record, dict):
            report.invalid.append(f"record {number}: not a JSON object")
            continue
        try:
            user, credential = user_documents(record)
        except (ValueError, InvalidEmail) as error:
            report.invalid.append(f"record {number}: {error}")
            continue
        if credential["password_hash"] is None:
            report.locked += 1
        else:
            report.usable += 1
        if await store.find_by_email_key(user["email_key"]) is None and (
            await store.insert_imported(user, credential)
        ):
            report.new += 1
        else:
            report.existing += 1
    for problem in report.invalid:
        logger.warning("import skipped %s", problem)
    return report
