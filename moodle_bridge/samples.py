"""Deterministic synthetic rosters in the generic format, for tests, demos and benchmarks.

Every person is invented: names are drawn from short lists of common Indonesian given names
and family names (combined at random, so no real person is described), and every NIP is
generated (birth date, appointment month, sex digit, sequence). Satker names are built from
real region names (places, not people) and generic institution types.

:func:`generate_people` streams :class:`SampleRow` objects; the same ``(size, seed, options)``
always gives the same rows, on every machine and on every day (the dates are bounded by
``today``, default :data:`REFERENCE_DATE`, never the clock). :func:`write_roster_csv` and
:func:`write_roster_xlsx` write them with the generic header ``nip,nama,email,unit,satker,
jabatan,golongan,status``.

A share of the rows (``dirty_share``) carries one of the dirty-data kinds of ``DOMAIN.md``;
:attr:`SampleRow.dirty` names it (see :data:`DIRTY_KINDS`). Rows of the kinds in
:data:`ERROR_KINDS` must come back from the reader as a RowError; rows of the kinds in
:data:`KEPT_KINDS` are set aside with a warning (their NIP kept, no person); the others are
accepted, some with a warning. Kinds in :data:`PAIR_KINDS` are two consecutive rows, both tagged.

The files are *input* for the reader, as HR would send them: formula-like names are written
as they are (in XLSX as text cells, never formulas). Do not open them in a spreadsheet
program that evaluates CSV formulas.
"""

from __future__ import annotations

import csv
import re
from bisect import bisect
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from random import Random
from types import MappingProxyType
from typing import Any, TypeVar

from moodle_bridge.roster.generic import COLUMNS

__all__ = [
    "DEFAULT_UNITS",
    "DIRTY_KINDS",
    "ERROR_KINDS",
    "HEADER",
    "KEPT_KINDS",
    "PAIR_KINDS",
    "REFERENCE_DATE",
    "SampleRow",
    "generate_people",
    "write_roster_csv",
    "write_roster_xlsx",
]

#: The generic format's columns, in the order the writers use.
HEADER: tuple[str, ...] = COLUMNS

#: The default ``today`` of :func:`generate_people`: appointments never lie after it.
REFERENCE_DATE = date(2025, 6, 30)

#: Share of the ASN per Eselon I unit (PENDIS, madrasah and university staff, by far the
#: largest). Weights need not sum to 1.
DEFAULT_UNITS: Mapping[str, float] = MappingProxyType(
    {
        "PENDIS": 0.70,
        "BIMAS_ISLAM": 0.15,
        "SETJEN": 0.05,
        "BIMAS_KRISTEN": 0.03,
        "BMBPSDM": 0.025,
        "BIMAS_KATOLIK": 0.015,
        "BIMAS_HINDU": 0.015,
        "ITJEN": 0.01,
        "BIMAS_BUDDHA": 0.005,
    }
)

#: The kinds of dirty row, as :attr:`SampleRow.dirty` names them.
DIRTY_KINDS: tuple[str, ...] = (
    "nip_spaces",  # "19750101 200003 1 001": accepted after normalising
    "nip_scientific",  # "1.97501E+17": refused (the digits are lost)
    "nip_bad_birth_date",  # "19751301...": refused
    "nip_17_digits",  # one digit missing: refused
    "email_messy",  # "  AHMAD.FAUZI3@PENDIS.KEMENAG.EXAMPLE ": accepted, normalised
    "email_invalid",  # "ahmad.fauzi at kemenag": refused
    "email_shared",  # two people, one address: both accepted, with a warning
    "duplicate_row",  # the same row twice: counted once, with a warning
    "nip_conflict",  # the same NIP on two rows that differ: both refused
    "name_missing",  # empty, "-" or titles only: refused
    "status_unknown",  # a status no table knows: set aside with a warning, the person kept
    "name_formula",  # '=HYPERLINK("...","...")': accepted as data
    "name_invisible",  # right-to-left marks, zero-width or control characters: accepted,
    # the characters removed, with a warning
)
#: Dirty kinds whose rows the reader refuses (each row gives a RowError).
ERROR_KINDS: frozenset[str] = frozenset(
    {
        "nip_scientific",
        "nip_bad_birth_date",
        "nip_17_digits",
        "email_invalid",
        "nip_conflict",
        "name_missing",
    }
)
#: Dirty kinds whose rows the reader sets aside with a warning, not an error: no person, and
#: the NIP in :attr:`~moodle_bridge.roster.generic.RosterResult.kept`.
KEPT_KINDS: frozenset[str] = frozenset({"status_unknown"})
#: Dirty kinds made of two consecutive rows (both carry the kind).
PAIR_KINDS: frozenset[str] = frozenset({"email_shared", "duplicate_row", "nip_conflict"})

_UNIT_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_BIRTH_FIRST = date(1960, 1, 1).toordinal()
_BIRTH_LAST = date(2000, 12, 31).toordinal()
_DEFAULT_PPPK_SHARE = 0.03


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One synthetic roster row: the generic columns as HR writes them (all text), and the
    kind of dirt injected (``None`` for a clean row)."""

    nip: str
    nama: str
    email: str
    unit: str
    satker: str
    jabatan: str
    golongan: str
    status: str
    dirty: str | None = None

    def cells(self) -> tuple[str, str, str, str, str, str, str, str]:
        """The cells in :data:`HEADER` order."""
        return (
            self.nip,
            self.nama,
            self.email,
            self.unit,
            self.satker,
            self.jabatan,
            self.golongan,
            self.status,
        )


# --- word lists (common names, combined at random: nobody real) ---------------------------------
_GIVEN_M = (
    "Ahmad", "Muhammad", "Abdul", "Agus", "Budi", "Hendra", "Rahmat", "Syaiful", "Arif",
    "Hasan", "Yusuf", "Ridwan", "Ilham", "Fajar", "Rizki", "Imam", "Slamet", "Bambang", "Joko",
    "Eko", "Dedi", "Asep", "Ujang", "Zainal", "Anwar", "Taufik", "Wahyu", "Andi", "Irfan",
    "Lukman", "Mahmud", "Nasrul", "Rudi", "Sofyan", "Teguh", "Umar", "Hamdan", "Kholid",
    "Ma'ruf", "Mu'min", "Rif'at", "Ma'mun", "Syafi'i", "Fauzan", "Bayu", "Dimas", "Nanang",
)  # fmt: skip
_GIVEN_F = (
    "Siti", "Nur", "Sri", "Dewi", "Ani", "Rina", "Fitri", "Nurul", "Aisyah", "Fatimah",
    "Khadijah", "Nur'aini", "Sa'adah", "Ni'mah", "Na'imah", "Rohmah", "Yuni", "Wulan", "Indah",
    "Ratna", "Diah", "Eka", "Lilis", "Neneng", "Euis", "Ulfah", "Zahra", "Laila", "Maryam",
    "Hanifah", "Mutia", "Rahma", "Novi", "Yanti", "Rini", "Tuti",
)  # fmt: skip
_MIDDLE_M = ("Nur", "Dwi", "Tri", "Abdul", "Ahmad", "Budi", "Arif", "Eko", "Hadi", "Ali")
_MIDDLE_F = ("Nur", "Dwi", "Tri", "Ayu", "Dewi", "Sri", "Eka", "Putri", "Nurul", "Indah")
_LAST_M = (
    "Hidayat", "Rahman", "Fauzi", "Saputra", "Setiawan", "Santoso", "Wibowo", "Nugroho",
    "Kurniawan", "Pratama", "Hakim", "Syahputra", "Maulana", "Firmansyah", "Hamid",
    "Zulkarnain", "Ma'arif", "Syafa'at", "Rifa'i", "Ni'am", "Mubarok", "Rohim", "Gunawan",
    "Prasetyo", "Susanto", "Hasibuan", "Nasution", "Lubis", "Siregar", "Harahap", "Ramadhan",
)  # fmt: skip
_LAST_F = (
    "Hidayati", "Hasanah", "Rahmawati", "Handayani", "Susanti", "Safitri", "Lestari",
    "Wulandari", "Kurniasih", "Puspitasari", "Fitriani", "Maulida", "Mu'awanah", "Zulfa",
    "Khoiriyah", "Nasution", "Lubis", "Siregar", "Rohmawati", "Amalia", "Nurhayati",
)  # fmt: skip
_MONONYM_M = (
    "Sutrisno", "Suparman", "Mulyono", "Paiman", "Suyatno", "Sukirman", "Suwarno", "Jumadi",
    "Rusdi", "Sarno", "Wagiman", "Darmaji", "Sugiyanto", "Mujiono",
)  # fmt: skip
_MONONYM_F = (
    "Sumarni", "Sumiati", "Warsini", "Tukiyem", "Ngatini", "Sarmini", "Karsiah", "Painem",
    "Suwarni", "Rukmini", "Juariah", "Sutini",
)  # fmt: skip
_CHRISTIAN_GIVEN_M = (
    "Yohanes", "Paulus", "Petrus", "Markus", "Stefanus", "Yosua", "Daniel", "Samuel",
    "Fransiskus", "Antonius", "Benediktus", "Agustinus", "Yakobus", "Matius",
)  # fmt: skip
_CHRISTIAN_GIVEN_F = (
    "Maria", "Theresia", "Agnes", "Veronika", "Elisabeth", "Yohana", "Ruth", "Debora", "Lidia",
    "Magdalena", "Kristina", "Yuliana", "Monika",
)  # fmt: skip
_CHRISTIAN_LAST = (
    "Simanjuntak", "Siahaan", "Sitompul", "Hutapea", "Manurung", "Pardede", "Sinaga",
    "Tampubolon", "Lumbantobing", "Wenas", "Rumbiak", "Ndruru", "Laoli", "Manafe", "Tanamal",
    "Situmorang", "Pandiangan", "Sembiring",
)  # fmt: skip
_BUDDHIST_GIVEN = (
    "Hendra", "Surya", "Dharma", "Metta", "Karuna", "Lina", "Cintya", "Sasana", "Viriya",
    "Mulyadi", "Santi", "Dewi",
)  # fmt: skip
_HINDU_GIVEN = ("Wisnu", "Krisna", "Arjuna", "Darma", "Ratih", "Sinta", "Dewi", "Wulan", "Surya")
_HINDU_LAST = ("Wardana", "Prabawa", "Kusuma", "Wijaya", "Pramana", "Sanjaya", "Anggraini")
_BUDDHIST_LAST = ("Wijaya", "Gunawan", "Tanjaya", "Salim", "Halim", "Santoso", "Kusuma")
_BALI_PREFIX_M = (
    "I Gusti Ngurah", "I Gusti Bagus", "I Made", "I Wayan", "I Putu", "I Nyoman", "I Ketut",
    "I Komang", "I Kadek", "Ida Bagus", "I Gede", "Anak Agung Ngurah",
)  # fmt: skip
_BALI_PREFIX_F = (
    "Ni Luh Putu", "Ni Luh Made", "Ni Made", "Ni Wayan", "Ni Komang", "Ni Ketut", "Ni Nyoman",
    "Ni Kadek", "I Gusti Ayu", "Ida Ayu", "Ni Putu", "Anak Agung Ayu",
)  # fmt: skip
_BALI_NAME_M = (
    "Adnyana", "Suartana", "Wirawan", "Darmawan", "Sudarsana", "Artana", "Suweta", "Mahendra",
    "Wiguna", "Astawa", "Sukadana", "Parwata", "Arsana", "Budiarta",
)  # fmt: skip
_BALI_NAME_F = (
    "Ariani", "Sukmawati", "Widiastuti", "Puspita Dewi", "Ayu Lestari", "Suastini", "Mariani",
    "Sri Utami", "Sugiantari", "Wahyuni", "Kartini", "Yuliantari",
)  # fmt: skip

_FRONT_M = ("Drs.", "H.", "Dr.", "Drs. H.", "KH.", "Ir.", "Dr. H.", "Prof. Dr.", "dr.", "Ir. H.")
_FRONT_F = ("Dra.", "Hj.", "Dr.", "Dra. Hj.", "Ir.", "Dr. Hj.", "Prof. Dr.", "dr.")
_FRONT_OTHER = ("Drs.", "Dr.", "Ir.", "Prof. Dr.")
_FRONT_CHRISTIAN = ("Pdt.", "Dr.", "Drs.", "Pdt. Dr.")
_BACK_ISLAM = (
    "S.Ag.", "S.Pd.I", "S.Pd.", "M.Pd.I.", "M.Si.", "Lc.", "MA", "S.Kom.", "S.H.I.", "M.Ag.",
    "S.E.", "S.Sos.I.", "M.Pd.", "S.Ag., M.Pd.I.", "S.Pd.I, M.Pd.", "Lc., MA", "S.Kom., M.Kom.",
    "S.Ag., M.Si.", "S.H., M.H.", "S.Pd., M.Pd.", "M.Ag., Ph.D.",
)  # fmt: skip
_BACK_CHRISTIAN = ("S.Th.", "M.Th.", "S.Pd.K.", "S.Ag.", "S.Th., M.Th.", "S.Si.", "M.Si.")
_BACK_HINDU = ("S.Ag.", "S.Pd.H.", "M.Pd.H.", "S.Ag., M.Si.", "S.E.", "M.Fil.H.")
_BACK_BUDDHA = ("S.Ag.", "S.Pd.B.", "M.Pd.B.", "S.E.", "S.Kom.")

_BACK = {
    "islam": _BACK_ISLAM,
    "christian": _BACK_CHRISTIAN,
    "hindu": _BACK_HINDU,
    "buddhist": _BACK_BUDDHA,
}
_RELIGION = {
    "BIMAS_KRISTEN": "christian",
    "BIMAS_KATOLIK": "christian",
    "BIMAS_HINDU": "hindu",
    "BIMAS_BUDDHA": "buddhist",
}

# --- places and positions ------------------------------------------------------------------------
_PROVINCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Jawa Barat", ("Kota Bandung", "Kabupaten Garut", "Kabupaten Tasikmalaya", "Kota Bogor",
                    "Kabupaten Cianjur", "Kabupaten Cirebon", "Kota Bekasi")),
    ("Jawa Tengah", ("Kota Semarang", "Kabupaten Demak", "Kabupaten Kudus", "Kota Surakarta",
                     "Kabupaten Banyumas", "Kabupaten Pati")),
    ("Jawa Timur", ("Kota Surabaya", "Kabupaten Jombang", "Kota Malang", "Kabupaten Sidoarjo",
                    "Kabupaten Lamongan", "Kabupaten Jember", "Kabupaten Pamekasan")),
    ("Banten", ("Kota Serang", "Kabupaten Pandeglang", "Kota Tangerang")),
    ("DKI Jakarta", ("Kota Jakarta Selatan", "Kota Jakarta Timur")),
    ("Aceh", ("Kota Banda Aceh", "Kabupaten Aceh Besar", "Kabupaten Pidie")),
    ("Sumatera Utara", ("Kota Medan", "Kabupaten Tapanuli Utara", "Kabupaten Deli Serdang",
                        "Kabupaten Mandailing Natal")),
    ("Sumatera Barat", ("Kota Padang", "Kabupaten Agam", "Kota Bukittinggi")),
    ("Sulawesi Selatan", ("Kota Makassar", "Kabupaten Bone", "Kabupaten Gowa")),
    ("Nusa Tenggara Barat", ("Kota Mataram", "Kabupaten Lombok Timur")),
    ("Nusa Tenggara Timur", ("Kota Kupang", "Kabupaten Ende", "Kabupaten Sikka")),
    ("Kalimantan Selatan", ("Kota Banjarmasin", "Kabupaten Banjar")),
    ("Bali", ("Kota Denpasar", "Kabupaten Badung", "Kabupaten Gianyar", "Kabupaten Tabanan",
              "Kabupaten Buleleng")),
    ("Sulawesi Utara", ("Kota Manado", "Kabupaten Minahasa")),
    ("Papua", ("Kota Jayapura", "Kabupaten Biak Numfor")),
)  # fmt: skip
_REGENCIES = tuple(r for _, rs in _PROVINCES for r in rs)
_CITIES = tuple(r.removeprefix("Kota ") for r in _REGENCIES if r.startswith("Kota "))
_KECAMATAN = (
    "Sukamaju", "Sukajadi", "Mekarsari", "Cibeureum", "Karangrejo", "Sumberagung", "Tanjungsari",
    "Margahayu", "Kedungwaru", "Pasirjaya", "Banjarsari", "Sidomulyo",
)  # fmt: skip

_Weighted = tuple[tuple[str, int], ...]


def _pool(items: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """Repeat each item by its weight: ``rng.choice`` on the pool is a weighted choice."""
    return tuple(item for item, weight in items for _ in range(weight))


def _kantor(province_weight: int = 1, regency_weight: int = 1, bidang: str = "") -> _Weighted:
    suffix = f" ({bidang})" if bidang else ""
    return (
        *((f"Kanwil Kemenag Provinsi {p}{suffix}", province_weight) for p, _ in _PROVINCES),
        *((f"Kankemenag {r}{suffix}", regency_weight) for r in _REGENCIES),
    )


_MADRASAH: _Weighted = tuple(
    (f"{kind} {n} {r}", weight)
    for r in _REGENCIES
    for kind, count, weight in (("MIN", 4, 3), ("MTsN", 3, 3), ("MAN", 2, 3))
    for n in range(1, count + 1)
)
_CAMPUS: _Weighted = tuple(
    (f"{kind} {c}", 4)
    for kind, cities in (("UIN", _CITIES[:8]), ("IAIN", _CITIES[8:]))
    for c in cities
)
_BALI = tuple(r for r in dict(_PROVINCES)["Bali"])
#: Each unit's work units (satker), with their weights.
_SATKER_WEIGHTS: dict[str, _Weighted] = {
    "PENDIS": (*_MADRASAH, *_CAMPUS, *_kantor(1, 1, "Pendidikan Madrasah")),
    "BIMAS_ISLAM": (
        *((f"KUA Kecamatan {k} {r}", 2) for r in _REGENCIES for k in _KECAMATAN[:3]),
        *_kantor(1, 2),
    ),
    "SETJEN": (
        ("Biro Sumber Daya Manusia", 6),
        ("Biro Keuangan dan BMN", 5),
        ("Biro Umum", 5),
        ("Biro Hukum dan Kerja Sama Luar Negeri", 3),
        ("Biro Perencanaan", 3),
        ("Pusat Data dan Informasi", 3),
        ("Biro Humas dan Komunikasi Publik", 3),
        *_kantor(1, 1, "Bagian Tata Usaha"),
    ),
    "ITJEN": (
        ("Inspektorat Wilayah I", 3),
        ("Inspektorat Wilayah II", 3),
        ("Inspektorat Wilayah III", 3),
        ("Inspektorat Wilayah IV", 3),
        ("Inspektorat Investigasi", 2),
        ("Sekretariat Inspektorat Jenderal", 2),
    ),
    "BMBPSDM": (
        ("Pusdiklat Tenaga Administrasi", 3),
        ("Pusdiklat Tenaga Teknis Pendidikan dan Keagamaan", 3),
        *((f"Balai Diklat Keagamaan {c}", 2) for c in _CITIES[:9]),
        *((f"Balai Litbang Agama {c}", 1) for c in _CITIES[:3]),
    ),
    "BIMAS_KRISTEN": _kantor(1, 1, "Pembimas Kristen"),
    "BIMAS_KATOLIK": _kantor(1, 1, "Pembimas Katolik"),
    "BIMAS_HINDU": (
        *((f"Kankemenag {r} (Penyelenggara Hindu)", 4) for r in _BALI),
        ("Kanwil Kemenag Provinsi Bali (Pembimas Hindu)", 3),
        *_kantor(0, 1, "Penyelenggara Hindu"),
    ),
    "BIMAS_BUDDHA": _kantor(1, 1, "Pembimas Buddha"),
    "": _kantor(1, 2),  # any other unit
}


def _levels(base: str, levels: Iterable[tuple[str, int]]) -> _Weighted:
    return tuple((f"{base} {level}", weight) for level, weight in levels)


_AHLI = (("Ahli Pertama", 4), ("Ahli Muda", 3), ("Ahli Madya", 2))
_COMMON_JABATAN: _Weighted = (
    ("Pengadministrasi Umum", 4), ("Pengelola Keuangan", 2), ("Analis Kepegawaian Ahli Muda", 1),
    ("Pranata Komputer Ahli Pertama", 1), ("Pramu Bakti", 1), ("Pengemudi", 1),
    ("Kepala Subbagian Tata Usaha", 1), ("Arsiparis Terampil", 1),
)  # fmt: skip


def _penyuluh(agama: str) -> _Weighted:
    return (
        *_levels(f"Penyuluh Agama {agama}", _AHLI),
        (f"Kepala Seksi Bimbingan Masyarakat {agama}", 1),
        ("Guru Ahli Pertama", 2), ("Guru Ahli Muda", 2),
        *_COMMON_JABATAN,
    )  # fmt: skip


#: Each unit's positions (jabatan), with their weights.
_JABATAN_WEIGHTS: dict[str, _Weighted] = {
    "PENDIS": (
        ("Guru Ahli Pertama", 30),
        ("Guru Ahli Muda", 25),
        ("Guru Ahli Madya", 15),
        ("Guru Ahli Utama", 1),
        ("Pengawas Sekolah Ahli Muda", 2),
        ("Dosen Asisten Ahli", 3),
        ("Dosen Lektor", 4),
        ("Dosen Lektor Kepala", 2),
        ("Guru Besar", 1),
        ("Pustakawan Ahli Pertama", 1),
        ("Pranata Laboratorium Pendidikan Terampil", 1),
        ("Kepala Seksi Pendidikan Madrasah", 1),
        *_COMMON_JABATAN,
    ),
    "BIMAS_ISLAM": (
        *_levels(
            "Penyuluh Agama Islam",
            (("Ahli Pertama", 8), ("Ahli Muda", 6), ("Ahli Madya", 3)),
        ),
        *_levels("Penghulu", (("Ahli Pertama", 5), ("Ahli Muda", 4), ("Ahli Madya", 2))),
        ("Kepala Kantor Urusan Agama", 3),
        ("Kepala Seksi Bimbingan Masyarakat Islam", 1),
        *_COMMON_JABATAN,
    ),
    "SETJEN": (
        *_levels("Analis Kepegawaian", _AHLI),
        *_levels("Perencana", _AHLI),
        *_levels("Analis Anggaran", _AHLI),
        *_levels("Pranata Komputer", _AHLI),
        *_levels("Pranata Hubungan Masyarakat", _AHLI),
        ("Kepala Bagian Umum", 1),
        *_COMMON_JABATAN,
    ),
    "ITJEN": (
        *_levels("Auditor", (*_AHLI, ("Ahli Utama", 1))),
        ("Auditor Terampil", 2),
        *_COMMON_JABATAN,
    ),
    "BMBPSDM": (
        *_levels("Widyaiswara", (*_AHLI, ("Ahli Utama", 1))),
        *_levels("Peneliti", _AHLI),
        ("Pengembang Teknologi Pembelajaran Ahli Muda", 2),
        *_COMMON_JABATAN,
    ),
    "BIMAS_KRISTEN": _penyuluh("Kristen"),
    "BIMAS_KATOLIK": _penyuluh("Katolik"),
    "BIMAS_HINDU": _penyuluh("Hindu"),
    "BIMAS_BUDDHA": _penyuluh("Buddha"),
    "": _COMMON_JABATAN,
}


_SATKER = {unit: _pool(weights) for unit, weights in _SATKER_WEIGHTS.items()}
_PENDIS_MADRASAH = tuple(s for s in _SATKER["PENDIS"] if s.startswith(("MIN ", "MTsN ", "MAN ")))
_PENDIS_CAMPUS = tuple(s for s in _SATKER["PENDIS"] if s.startswith(("UIN ", "IAIN ")))
_JABATAN = {unit: _pool(weights) for unit, weights in _JABATAN_WEIGHTS.items()}
_GOLONGAN = (
    "II/a", "II/b", "II/c", "II/d", "III/a", "III/b", "III/c", "III/d",
    "IV/a", "IV/b", "IV/c", "IV/d", "IV/e",
)  # fmt: skip
_III_A = 4
_IV_B = 9
_INACTIVE = ("PENSIUN", "MENINGGAL", "CLTN", "MENINGGAL DUNIA")
# Not in mappings/statuses.csv: a typo, a placeholder, two statuses in one cell, a made-up one.
_UNKNOWN_STATUSES = ("AKTIP", "SKORSING", "CUTII", "PENDING", "STATUS ?", "AKTIF/PENSIUN")
_NO_NAME = ("", "-", "Drs.", "H.", "S.Pd.")
_INVISIBLES = ("\u200f", "\u202e", "\u200b", "\u200e", "\u2066", "\ufeff", "\x7f", "\u00ad")
_EMAIL_SKIP = frozenset({"i", "ni", "ida", "anak", "agung", "gusti"})
_EMAIL_DROP = str.maketrans("", "", "'\u2019 ")
_SCIENTIFIC = re.compile(r"\d\.\d+E\+\d+")


_T = TypeVar("_T")


@lru_cache(maxsize=4)
def _birth_days(last: int) -> tuple[tuple[str, int, int], ...]:
    """``(YYYYMMDD, year, month)`` of every possible birth day, 1960 to ``last`` (ordinal)."""
    days = []
    for ordinal in range(_BIRTH_FIRST, last + 1):
        d = date.fromordinal(ordinal)
        days.append((f"{d.year}{d.month:02d}{d.day:02d}", d.year, d.month))
    return tuple(days)


# --- the generator -------------------------------------------------------------------------------
class _Maker:
    """Makes the people of one roster; keeps the state that makes NIPs and emails unique."""

    def __init__(
        self, rng: Random, units: Mapping[str, float], pppk_share: float, today: date
    ) -> None:
        self.rng = rng
        self.random = rng.random
        self.pppk_share = pppk_share
        self.today = today
        last_birth = min(_BIRTH_LAST, date(today.year - 19, 12, 31).toordinal())
        self.births = _birth_days(last_birth)
        self.latest = today.year * 12 + today.month - 1
        self.units = tuple(units)
        self.cum = tuple(accumulate(units.values()))
        self.nips: set[str] = set()
        self.email_counts: dict[str, int] = {}
        self.domains = {u: u.lower().replace("_", "-") + ".kemenag.example" for u in units}

    def pick(self, items: Sequence[_T]) -> _T:
        """A uniform choice: one call of ``random()``, faster than ``Random.choice``."""
        return items[int(self.random() * len(items))]

    def unit(self) -> str:
        r = self.random() * self.cum[-1]
        return self.units[min(bisect(self.cum, r), len(self.units) - 1)]

    def nip(self) -> tuple[str, int, bool]:
        """A new unique NIP, the appointment year and whether the person is female."""
        random = self.random
        births = self.births
        # The mean of two uniforms: birth years peak around 1980.
        ymd, born_year, born_month = births[int((random() + random()) * 0.5 * len(births))]
        female = random() < 0.5
        sex = "2" if female else "1"
        if random() < self.pppk_share:
            # PPPK: birth date, appointment year, "21", sex, sequence (the middle is no month).
            first = max(2019, born_year + 18)
            last = max(first, min(2024, self.today.year))
            year = first + int(random() * (last - first + 1))
            middle = f"{year}21"
        else:
            earliest = (born_year + 18) * 12 + born_month - 1
            months = min(earliest + int(self.rng.triangular(0, 22 * 12, 5 * 12)), self.latest)
            year, month = divmod(months, 12)
            middle = f"{year}{month + 1:02d}"
        prefix = f"{ymd}{middle}{sex}"
        # Sequences are mostly small: the minimum of two uniforms.
        seq = 1 + int(min(random(), random()) * 300)
        nip = f"{prefix}{seq:03d}"
        nips = self.nips
        while nip in nips:
            seq = seq % 999 + 1
            nip = f"{prefix}{seq:03d}"
        nips.add(nip)
        return nip, year, female

    def name(self, unit: str, female: bool) -> tuple[str, str, str]:
        """The name as HR writes it, and the two words its email is made of (the second
        empty for a one-word name)."""
        random, pick = self.random, self.pick
        religion = _RELIGION.get(unit, "islam")
        if (religion == "hindu" and random() < 0.85) or random() < 0.004:
            prefix = pick(_BALI_PREFIX_F if female else _BALI_PREFIX_M)
            own = pick(_BALI_NAME_F if female else _BALI_NAME_M)
            words = f"{prefix} {own}"
            parts = [w for w in words.split() if w.lower() not in _EMAIL_SKIP]
            first, last = parts[0], parts[-1]
        elif random() < 0.05:
            words = first = pick(_MONONYM_F if female else _MONONYM_M)
            last = ""
        elif religion == "christian":
            first = pick(_CHRISTIAN_GIVEN_F if female else _CHRISTIAN_GIVEN_M)
            last = pick(_CHRISTIAN_LAST)
            words = f"{first} {last}"
        elif religion == "buddhist":
            first, last = pick(_BUDDHIST_GIVEN), pick(_BUDDHIST_LAST)
            words = f"{first} {last}"
        elif religion == "hindu":  # Javanese, Dayak or Indian-Indonesian Hindus
            first, last = pick(_HINDU_GIVEN), pick(_HINDU_LAST)
            words = f"{first} {last}"
        else:
            first = given = pick(_GIVEN_F if female else _GIVEN_M)
            last = pick(_LAST_F if female else _LAST_M)
            if random() < 0.3:
                middle = pick(_MIDDLE_F if female else _MIDDLE_M)
                if middle != given:
                    given = f"{given} {middle}"
            words = f"{given} {last}"

        nama = words
        if random() < 0.14:
            if religion == "christian":
                front = pick(_FRONT_CHRISTIAN)
            elif religion == "islam":
                front = pick(_FRONT_F if female else _FRONT_M)
            else:
                front = pick(_FRONT_OTHER)
            nama = f"{front} {nama}"
        if random() < 0.45:
            nama = f"{nama}, {pick(_BACK[religion])}"
        r = random()
        if r < 0.03:
            nama = nama.upper()
        elif r < 0.04 and "'" in nama:
            nama = nama.replace("'", "\u2019")  # a word processor's apostrophe
        return nama, first, last

    def email(self, unit: str, first: str, last: str) -> str:
        base = first.lower().translate(_EMAIL_DROP)
        if last:
            base = f"{base}.{last.lower().translate(_EMAIL_DROP)}"
        count = self.email_counts.get(base, 0) + 1
        self.email_counts[base] = count
        return f"{base}{count}@{self.domains[unit]}"

    def satker(self, unit: str, jabatan: str) -> str:
        if unit == "PENDIS":
            if jabatan.startswith(("Dosen", "Guru Besar")):
                return self.pick(_PENDIS_CAMPUS)
            if jabatan.startswith(("Guru", "Pengawas", "Pustakawan", "Pranata Lab")):
                return self.pick(_PENDIS_MADRASAH)
        return self.pick(_SATKER.get(unit) or _SATKER[""])

    def person(self) -> SampleRow:
        random, pick = self.random, self.pick
        unit = self.unit()
        nip, appointed, female = self.nip()
        nama, first, last = self.name(unit, female)
        r = random()
        email = "" if r < 0.045 else "-" if r < 0.05 else self.email(unit, first, last)
        jabatan = pick(_JABATAN.get(unit) or _JABATAN[""])
        satker = self.satker(unit, jabatan)
        start = 0 if random() < 0.2 else _III_A
        rank = start + (self.today.year - appointed) // 6 + int(random() * 3) - 1
        top = len(_GOLONGAN) - 1 if jabatan.endswith(("Utama", "Guru Besar")) else _IV_B
        golongan = _GOLONGAN[max(0, min(rank, top))]
        r = random()
        status = (
            "" if r < 0.69 else "AKTIF" if r < 0.98 else "Aktif" if r < 0.99
            else pick(_INACTIVE)
        )  # fmt: skip
        return SampleRow(nip, nama, email, unit, satker, jabatan, golongan, status)

    def fresh_email(self, row: SampleRow) -> str:
        if "@" in row.email:
            return row.email
        words = [w for w in row.nama.split(",")[0].split() if "." not in w]
        words = [w for w in words if w.lower() not in _EMAIL_SKIP] or ["pegawai"]
        return self.email(row.unit, words[0], words[-1] if len(words) > 1 else "")

    def dirty(self, kind: str) -> list[SampleRow]:
        """The row(s) of one dirty kind."""
        make = _DIRTY_MAKERS.get(kind)
        if make is None:
            msg = f"unknown dirty kind {kind!r}"
            raise ValueError(msg)
        return [replace(row, dirty=kind) for row in make(self, self.person())]

    def _nip_spaces(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        nip = row.nip
        sep = rng.choice((" ", " ", " ", ".", "-"))
        spaced = sep.join((nip[:8], nip[8:14], nip[14], nip[15:]))
        if rng.random() < 0.2:
            spaced = f"NIP. {spaced}"
        return [replace(row, nip=spaced)]

    def _nip_scientific(self, row: SampleRow) -> list[SampleRow]:
        return [replace(row, nip=f"{int(row.nip):.5E}")]

    def _nip_bad_birth_date(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        nip = row.nip
        bad = rng.choice(("13", "00", "02-30", "04-31", "02-31"))
        month, day = (bad[:2], bad[3:]) if "-" in bad else (bad, nip[6:8])
        return [replace(row, nip=f"{nip[:4]}{month}{day}{nip[8:]}")]

    def _nip_17_digits(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        nip = row.nip
        cut = rng.randrange(len(nip))
        return [replace(row, nip=nip[:cut] + nip[cut + 1 :])]

    def _email_messy(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        email = self.fresh_email(row).upper()
        padded = rng.choice((f" {email}", f"{email} ", f"  {email}  ", f"{email}\t"))
        return [replace(row, email=padded)]

    def _email_invalid(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        local = self.fresh_email(row).partition("@")[0]
        bad = rng.choice(
            (
                f"{local} at kemenag",
                f"{local}@kemenag",
                f"{local}@@kemenag.example",
                f"{local}@kemenag.example; {local}@pendis.example",
                f"{local} @kemenag.example",
            )
        )
        return [replace(row, email=bad)]

    def _email_shared(self, row: SampleRow) -> list[SampleRow]:
        email = self.fresh_email(row)
        other = self.person()
        return [replace(row, email=email), replace(other, email=email)]

    def _duplicate_row(self, row: SampleRow) -> list[SampleRow]:
        return [row, row]

    def _nip_conflict(self, row: SampleRow) -> list[SampleRow]:
        moved = replace(
            row,
            satker=self.satker(row.unit, row.jabatan),
            golongan=_GOLONGAN[(_GOLONGAN.index(row.golongan) + 1) % len(_GOLONGAN)],
        )
        return [row, moved]

    def _name_missing(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        return [replace(row, nama=rng.choice(_NO_NAME))]

    def _status_unknown(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        return [replace(row, status=rng.choice(_UNKNOWN_STATUSES))]

    def _name_formula(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        plain = row.nama.split(",")[0].replace('"', "")
        payload = rng.choice(
            (
                f'=HYPERLINK("http://contoh.example/login","{plain}")',
                f"=CMD|' /C calc'!A0 {plain}",
                f"+{plain}",
                f"@SUM(A1:A9) {plain}",
                f"-{plain}",
            )
        )
        return [replace(row, nama=payload)]

    def _name_invisible(self, row: SampleRow) -> list[SampleRow]:
        rng = self.rng
        mark = rng.choice(_INVISIBLES)
        nama = row.nama
        at = rng.randrange(len(nama) + 1)
        return [replace(row, nama=nama[:at] + mark + nama[at:])]


#: How each kind of dirty row is made from a clean one.
_DIRTY_MAKERS: dict[str, Callable[[_Maker, SampleRow], list[SampleRow]]] = {
    "nip_spaces": _Maker._nip_spaces,
    "nip_scientific": _Maker._nip_scientific,
    "nip_bad_birth_date": _Maker._nip_bad_birth_date,
    "nip_17_digits": _Maker._nip_17_digits,
    "email_messy": _Maker._email_messy,
    "email_invalid": _Maker._email_invalid,
    "email_shared": _Maker._email_shared,
    "duplicate_row": _Maker._duplicate_row,
    "nip_conflict": _Maker._nip_conflict,
    "name_missing": _Maker._name_missing,
    "status_unknown": _Maker._status_unknown,
    "name_formula": _Maker._name_formula,
    "name_invisible": _Maker._name_invisible,
}


def _check_units(units: Mapping[str, float]) -> dict[str, float]:
    if not units:
        msg = "units must name at least one unit"
        raise ValueError(msg)
    checked: dict[str, float] = {}
    for code, weight in units.items():
        if not _UNIT_CODE.fullmatch(code):
            msg = f"unit code {code!r} must be upper-case letters, digits and _ (like PENDIS)"
            raise ValueError(msg)
        if not weight > 0:  # also refuses NaN
            msg = f"the weight of unit {code} must be positive, not {weight!r}"
            raise ValueError(msg)
        checked[code] = float(weight)
    return checked


def generate_people(
    size: int,
    seed: int,
    *,
    dirty_share: float = 0.02,
    units: Mapping[str, float] | None = None,
    dirty_kinds: Collection[str] | None = None,
    pppk_share: float = _DEFAULT_PPPK_SHARE,
    today: date = REFERENCE_DATE,
) -> Iterator[SampleRow]:
    """Stream ``size`` synthetic roster rows, the same ones for the same arguments.

    ``units`` maps Eselon I codes to weights (default :data:`DEFAULT_UNITS`). About
    ``dirty_share`` of the rows are dirty, of the ``dirty_kinds`` given (default: all of
    :data:`DIRTY_KINDS`, equally often); a pair kind that does not fit before ``size`` is
    replaced by a single-row kind. About ``pppk_share`` of the NIPs have the PPPK layout
    (accepted with a warning). Birth dates run 1960-2000; appointments are at least 18 years
    after birth and not after ``today``.

    Only the NIPs and email names issued so far are kept in memory (for uniqueness).
    Raises :class:`ValueError` for a bad argument, at the call (not at the first row).
    """
    if size < 0:
        msg = f"size must be 0 or more, not {size}"
        raise ValueError(msg)
    if not 0.0 <= dirty_share <= 1.0:
        msg = f"dirty_share must be between 0 and 1, not {dirty_share}"
        raise ValueError(msg)
    if not 0.0 <= pppk_share <= 1.0:
        msg = f"pppk_share must be between 0 and 1, not {pppk_share}"
        raise ValueError(msg)
    if today.year < 2019:
        msg = "today must be in 2019 or later (people born in 2000 are appointed from 2018)"
        raise ValueError(msg)
    kinds = tuple(DIRTY_KINDS if dirty_kinds is None else dict.fromkeys(dirty_kinds))
    unknown = [k for k in kinds if k not in DIRTY_KINDS]
    if unknown:
        msg = f"unknown dirty kinds {unknown} (known: {', '.join(DIRTY_KINDS)})"
        raise ValueError(msg)
    if dirty_share > 0 and not kinds:
        msg = "dirty_kinds is empty but dirty_share is not 0"
        raise ValueError(msg)
    checked = _check_units(DEFAULT_UNITS if units is None else units)
    return _generate(size, Random(seed), dirty_share, checked, kinds, pppk_share, today)


def _generate(
    size: int,
    rng: Random,
    dirty_share: float,
    units: Mapping[str, float],
    kinds: tuple[str, ...],
    pppk_share: float,
    today: date,
) -> Iterator[SampleRow]:
    maker = _Maker(rng, units, pppk_share, today)
    singles = tuple(k for k in kinds if k not in PAIR_KINDS)
    # A dirty event makes ``rows`` rows on average (pairs make two); choose the chance of an
    # event so that about ``dirty_share`` of the rows are dirty.
    rows = 1 + (len(kinds) - len(singles)) / len(kinds) if kinds else 1.0
    event = dirty_share / (rows * (1 - dirty_share) + dirty_share) if dirty_share else 0.0
    made = 0
    while made < size:
        if event and rng.random() < event:
            kind = rng.choice(kinds)
            if kind in PAIR_KINDS and size - made < 2:
                if not singles:
                    yield maker.person()
                    made += 1
                    continue
                kind = rng.choice(singles)
            dirty = maker.dirty(kind)
            yield from dirty
            made += len(dirty)
        else:
            yield maker.person()
            made += 1


# --- writers -------------------------------------------------------------------------------------
def write_roster_csv(
    path: str | Path,
    rows: Iterable[SampleRow],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
    bom: bool = False,
    errors: str = "strict",
) -> int:
    """Write rows as a generic-format CSV file, streamed; the number of rows written.

    ``bom`` writes a UTF-8 byte order mark (Excel's "CSV UTF-8"). With ``encoding="cp1252"``
    a character Windows-1252 lacks (a right-to-left mark) raises :class:`UnicodeEncodeError`
    unless ``errors="replace"`` (what Excel does: ``?``). Cells are written as they are:
    formula-like names are the point of some dirty rows.
    """
    if bom:
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
            msg = f"a BOM is only written for UTF-8, not {encoding}"
            raise ValueError(msg)
        encoding = "utf-8-sig"
    count = 0
    with Path(path).open("w", encoding=encoding, errors=errors, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(row.cells())
            count += 1
    return count


def write_roster_xlsx(
    path: str | Path, rows: Iterable[SampleRow], *, sheet: str = "Pegawai"
) -> int:
    """Write rows as a generic-format XLSX workbook (openpyxl write-only); rows written.

    Every cell is a text cell, a value starting with ``=`` too (it is data, not a formula),
    except a NIP already in scientific notation (``1.97501E+17``), which is written as the
    number Excel made of it.
    """
    from openpyxl import Workbook  # type: ignore[import-untyped, unused-ignore]
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped, unused-ignore]

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)
    worksheet.append(list(HEADER))
    count = 0
    for row in rows:
        cells: list[Any] = list(row.cells())
        if _SCIENTIFIC.fullmatch(row.nip):
            cells[0] = float(row.nip)
        for i, value in enumerate(cells):
            if isinstance(value, str) and value.startswith("="):
                cell = WriteOnlyCell(worksheet, value)
                cell.data_type = "s"
                cells[i] = cell
        worksheet.append(cells)
        count += 1
    workbook.save(str(path))
    return count


@dataclass(frozen=True, slots=True)
class SampleAssessment:
    """One synthetic assessment row: ``nip, kompetensi, level, tanggal``."""

    nip: str
    kompetensi: str
    level: int
    tanggal: date


def generate_assessments(
    rows: Iterable[SampleRow],
    competencies: Sequence[str],
    seed: int,
    *,
    assessed_share: float = 0.9,
    day: date = REFERENCE_DATE,
) -> Iterator[SampleAssessment]:
    """Assess about ``assessed_share`` of the people in every competency given, at levels
    1-4 leaning low (the ministry reports half its ASN need development); deterministic."""
    rng = Random(seed)
    for row in rows:
        if row.dirty is not None or rng.random() >= assessed_share:
            continue
        for code in competencies:
            level = min(4, max(1, round(rng.triangular(1, 4.5, 2))))
            yield SampleAssessment(row.nip, code, level, day)


def write_assessments_csv(path: Path, assessments: Iterable[SampleAssessment]) -> int:
    """Write assessments in the generic format; returns the number of rows."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("nip", "kompetensi", "level", "tanggal"))
        for a in assessments:
            writer.writerow((a.nip, a.kompetensi, a.level, a.tanggal.isoformat()))
            count += 1
    return count
