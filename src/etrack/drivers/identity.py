"""Who a driver is: the key of a driver from the provider's trip fields, and
the document (CPF) a user may record.

The provider sends `condutor_identificacao` (a badge, an iButton, a CNH
number: whatever the tracker reads) and `condutor_nome`; either may be
empty. The identification, when there is one, is the driver's key (two
spellings of a name are one driver); otherwise the name, normalized (NFC,
spaces collapsed, upper case), is. How the provider spelled it is kept as
an alias (store.drivers), so a merge of two keys holds for the trips still
to come.
"""

from __future__ import annotations

import re
import unicodedata

from etrack.errors import UsageError

__all__ = ["alias_of", "check_cpf", "driver_key", "normalized_name", "read_document"]

_SPACES = re.compile(r"\s+")


def normalized_name(name: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name)).strip().upper()


def alias_of(identificacao: str | None, nome: str | None) -> str | None:
    """The alias a provider trip names its driver by ('id:...' or 'name:...'),
    as SQL computes it from the trips table (drivers.sql says the same); None:
    the trip has no driver."""
    ident = (identificacao or "").strip()
    if ident:
        return f"id:{ident}"
    name = (nome or "").strip()
    return f"name:{name}" if name else None


def driver_key(identificacao: str | None, nome: str | None) -> str | None:
    """The drivers.id of a new driver first seen with these fields."""
    ident = (identificacao or "").strip()
    if ident:
        return ident
    name = normalized_name(nome or "")
    return name or None


def check_cpf(text: str) -> str:
    """The CPF's 11 digits (dots and dash allowed), or a UsageError saying why not."""
    digits = re.sub(r"[.\-\s]", "", text)
    if not re.fullmatch(r"\d{11}", digits):
        raise UsageError(f"CPF {text!r}: expected 11 digits (000.000.000-00)")
    if len(set(digits)) == 1:
        raise UsageError(f"CPF {text!r}: a CPF of one repeated digit is not valid")
    numbers = [int(d) for d in digits]
    for length in (9, 10):
        total = sum(n * w for n, w in zip(numbers[:length], range(length + 1, 1, -1), strict=True))
        check = (total * 10) % 11 % 10
        if check != numbers[length]:
            raise UsageError(f"CPF {text!r}: the check digits do not match")
    return digits


def read_document(text: str) -> str | None:
    """A driver's document as typed: a CPF when it has a CPF's 11 digits (its
    check digits verified: a UsageError otherwise), else a registration as
    given; None when blank."""
    value = text.strip()
    if not value:
        return None
    digits = re.sub(r"[.\-\s]", "", value)
    return check_cpf(value) if digits.isdigit() and len(digits) == 11 else value
