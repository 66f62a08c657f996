"""Write the sample files of the built-in unit plugins: synthetic people only.

Run ``python plugins/samples/make_samples.py`` to regenerate them. Every name is drawn from
short lists of common Indonesian given names and family names, and every NIP is generated
(random birth date, appointment month, sex, sequence), so no real person is described. The
output is deterministic for a given seed.

Each file holds a few dozen clean rows and, at fixed places, the dirty rows ``DOMAIN.md``
describes: a NIP written with spaces, one Excel turned into a number, one with an impossible
birth date, a PPPK-shaped NIP, a one-word name, titles inside or beside the name, emails in upper
case or with spaces, an email shared by two people, an identical duplicate row, two rows that
disagree about the same NIP, a missing name, a retired person, and a malformed date.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

GIVEN_M = [
    "Ahmad",
    "Muhammad",
    "Rizki",
    "Fauzan",
    "Hendra",
    "Yusuf",
    "Arif",
    "Bayu",
    "Dimas",
    "Fajar",
    "Hasan",
    "Ilham",
    "Irfan",
    "Lukman",
    "Ma'ruf",
    "Nanang",
    "Rahmat",
    "Taufik",
]
GIVEN_F = [
    "Siti",
    "Nur'aini",
    "Dewi",
    "Fitri",
    "Aisyah",
    "Laila",
    "Maryam",
    "Nurul",
    "Rina",
    "Sri",
    "Ulfa",
    "Wulan",
    "Yuni",
    "Zahra",
    "Khadijah",
    "Anisa",
    "Rahma",
    "Indah",
]
FAMILY = [
    "Hidayat",
    "Saputra",
    "Lestari",
    "Rahmawati",
    "Nasution",
    "Siregar",
    "Harahap",
    "Wijaya",
    "Kurniawan",
    "Hasibuan",
    "Fadillah",
    "Ramadhan",
    "Maulana",
    "Pratama",
    "Anwar",
    "Syahputra",
    "Hakim",
    "Mubarok",
]
MONONYMS = ["Suparman", "Mulyono", "Sumarni", "Paimin", "Tukiyem", "Slamet"]
FRONT_M = ["", "", "", "", "Drs.", "H.", "Dr.", "Drs. H."]
FRONT_F = ["", "", "", "", "Dra.", "Hj.", "Dr.", "Dra. Hj."]
BACK_TITLES = ["", "", "S.Ag.", "S.Pd.I", "M.Pd.I.", "M.Si.", "Lc., MA", "S.Kom.", "S.Th.I."]
GOLONGAN = [
    ("Penata Muda", "III/a"),
    ("Penata Muda Tk. I", "III/b"),
    ("Penata", "III/c"),
    ("Penata Tk. I", "III/d"),
    ("Pembina", "IV/a"),
    ("Pengatur", "II/c"),
]


def make_nip(rng: random.Random, female: bool, *, pppk: bool = False) -> str:
    """A synthetic 18-digit NIP: birth date, appointment month, sex, sequence."""
    born = dt.date(1965, 1, 1) + dt.timedelta(days=rng.randrange(35 * 365))
    sex = "2" if female else "1"
    if pppk:
        # PPPK numbers carry the appointment year and a type code where CPNS carry YYYYMM.
        middle = f"{rng.randrange(2019, 2025)}21"
    else:
        appointed = born.year + rng.randrange(20, 30)
        middle = f"{min(appointed, 2024)}{rng.randrange(1, 13):02d}"
    return f"{born:%Y%m%d}{middle}{sex}{rng.randrange(1, 1000):03d}"


def make_name(rng: random.Random, female: bool) -> str:
    """A synthetic two- or three-word name."""
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    if rng.random() < 0.3:
        given = f"{given} {rng.choice(GIVEN_F if female else GIVEN_M)}"
    return f"{given} {rng.choice(FAMILY)}"


def email_for(name: str, nip: str) -> str:
    """A synthetic address on the ministry's domain."""
    local = "".join(ch for ch in name.lower().replace(" ", ".") if ch.isalnum() or ch == ".")
    return f"{local}.{nip[-3:]}@kemenag.go.id"


# --- PENDIS: a SIMPEG-style CSV -------------------------------------------------------------------
PENDIS_HEADER = [
    "NIP",
    "Nama Lengkap",
    "Gelar Depan",
    "Gelar Belakang",
    "Email Dinas",
    "Satuan Kerja",
    "Jabatan",
    "Pangkat/Golongan",
    "Status Pegawai",
    "TMT Jabatan",
]
PENDIS_SATKER = [
    "MAN 1 Kota Bandung",
    "MTsN 2 Sleman",
    "MIN 3 Aceh Besar",
    "UIN Sunan Kalijaga Yogyakarta",
    "Kanwil Kemenag Prov. Jawa Barat",
    "Kankemenag Kab. Garut",
    "IAIN Kudus",
    "MAN 2 Kota Medan",
]
PENDIS_JABATAN = [
    "Guru Madrasah Ahli Pertama",
    "Guru Madrasah Ahli Muda",
    "Dosen Asisten Ahli",
    "Dosen Lektor",
    "Kepala Madrasah",
    "Pengelola Data",
    "Analis Kepegawaian",
]


def pendis_rows(rng: random.Random, count: int = 36) -> list[list[str]]:
    """Clean rows for PENDIS, then the dirty ones."""
    rows: list[list[str]] = []
    for _ in range(count):
        female = rng.random() < 0.5
        nip, name = make_nip(rng, female), make_name(rng, female)
        pangkat, gol = rng.choice(GOLONGAN)
        front = rng.choice(FRONT_F if female else FRONT_M)
        tmt = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3000))
        rows.append(
            [
                nip,
                name,
                front,
                rng.choice(BACK_TITLES),
                email_for(name, nip),
                rng.choice(PENDIS_SATKER),
                rng.choice(PENDIS_JABATAN),
                f"{pangkat} ({gol})",
                rng.choice(["PNS", "PNS", "PNS", "CPNS"]),
                f"{tmt:%d-%m-%Y}",
            ]
        )
    # The dirty rows, each a kind DOMAIN.md lists.
    spaced = make_nip(rng, False)
    rows[3][0] = f"{spaced[:8]} {spaced[8:14]} {spaced[14]} {spaced[15:]}"
    rows[5][4] = rows[5][4].upper()
    rows[7][4] = f"  {rows[7][4]} "
    rows[9][4] = ""
    rows[11][4] = rows[10][4]  # one address shared by two people
    rows[12][1] = rng.choice(MONONYMS)
    rows[13][8] = "Pensiun"
    rows[14][9] = "31-02-2020"  # no such day: kept as a warning, the person is still read
    rows.append(list(rows[2]))  # an identical duplicate: collapses to one row with a warning
    conflict = list(rows[4])
    conflict[5] = "MTsN 9 Jakarta"
    rows.append(conflict)  # same NIP, other satker: both rows are rejected
    rows.append(
        [
            "1.97501E+17",
            "Ahmad Sobari",
            "",
            "S.Ag.",
            "",
            PENDIS_SATKER[0],
            PENDIS_JABATAN[0],
            "Penata (III/c)",
            "PNS",
            "01-07-2019",
        ]
    )
    rows.append(
        [
            "197513402000031001",
            "Siti Rohmah",
            "Hj.",
            "",
            "",
            PENDIS_SATKER[1],
            PENDIS_JABATAN[1],
            "Penata (III/c)",
            "PNS",
            "01-07-2019",
        ]
    )  # month 13
    rows.append(
        [
            make_nip(rng, True, pppk=True),
            "Ulfa Mardiyah",
            "",
            "S.Pd.",
            "",
            PENDIS_SATKER[2],
            PENDIS_JABATAN[0],
            "IX",
            "PPPK",
            "01-03-2023",
        ]
    )
    rows.append(
        [
            make_nip(rng, True),
            "",
            "",
            "",
            "",
            PENDIS_SATKER[3],
            PENDIS_JABATAN[3],
            "Penata (III/c)",
            "PNS",
            "01-07-2019",
        ]
    )  # no name
    return rows


def write_pendis(path: Path, rng: random.Random) -> None:
    """As Excel's "CSV UTF-8" in an Indonesian locale writes it: BOM, ``;``, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(PENDIS_HEADER)
    writer.writerows(pendis_rows(rng))
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))


# --- BIMAS_ISLAM: an XLSX export ------------------------------------------------------------------
BIMAS_HEADER = [
    "No",
    "NIP Baru",
    "Nama Pegawai",
    "Jenis Kelamin",
    "E-mail",
    "Unit Kerja",
    "Jabatan",
    "Gol. Ruang",
    "Status",
]
BIMAS_SATKER = [
    "KUA Kec. Cibinong",
    "KUA Kec. Depok",
    "Kankemenag Kota Bogor",
    "Direktorat Penerangan Agama Islam",
    "Kanwil Kemenag Prov. Banten",
    "KUA Kec. Mlati",
]
BIMAS_JABATAN = [
    "Penghulu Ahli Pertama",
    "Penghulu Ahli Muda",
    "Penyuluh Agama Islam Ahli Muda",
    "Kepala KUA",
    "Penata Layanan Operasional",
    "Analis Kebijakan",
]


def bimas_rows(rng: random.Random, count: int = 30) -> list[list[object]]:
    """Clean rows for BIMAS_ISLAM, then the dirty ones."""
    rows: list[list[object]] = []
    for _ in range(count):
        female = rng.random() < 0.4
        nip, name = make_nip(rng, female), make_name(rng, female)
        front = rng.choice(FRONT_F if female else FRONT_M)
        back = rng.choice(BACK_TITLES)
        display = " ".join(part for part in (front, name) if part)
        if back:
            display = f"{display}, {back}"
        rows.append(
            [
                nip,
                display,
                "P" if female else "L",
                email_for(name, nip),
                rng.choice(BIMAS_SATKER),
                rng.choice(BIMAS_JABATAN),
                rng.choice(GOLONGAN)[1],
                "Aktif",
            ]
        )
    rows[4][0] = 1.97501012000031e17  # a NIP cell Excel turned into a number
    rows[6][1] = f"Drs. H. {rng.choice(MONONYMS)}"  # a one-word name behind titles
    rows[8][3] = "Sama@Kemenag.go.id"
    rows[9][3] = "sama@kemenag.go.id "
    rows[10][7] = "Meninggal"
    rows[11][1] = ""
    rows[13][0] = "19801131 200501 1 002"  # 31 November
    rows.append(list(rows[2]))
    conflict = list(rows[5])
    conflict[5] = "Kepala KUA"
    rows.append(conflict)
    return [[index, *row] for index, row in enumerate(rows, start=1)]


def write_bimas(path: Path, rng: random.Random) -> None:
    """One sheet named after the unit, header on the first row."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Pegawai"
    sheet.append(BIMAS_HEADER)
    for row in bimas_rows(rng):
        sheet.append(row)
    fixed = dt.datetime(2024, 1, 1)
    book.properties.created = fixed
    book.properties.modified = fixed
    book.save(path)


# --- the generic format, and assessments ----------------------------------------------------------
GENERIC_HEADER = ["nip", "nama", "email", "unit", "satker", "jabatan", "golongan", "status"]


def generic_rows(rng: random.Random, count: int = 24) -> list[list[str]]:
    """People of three units in the generic format, with a few dirty rows."""
    units = ["SETJEN", "ITJEN", "BMBPSDM"]
    rows: list[list[str]] = []
    for index in range(count):
        female = rng.random() < 0.5
        nip, name = make_nip(rng, female), make_name(rng, female)
        rows.append(
            [
                nip,
                name,
                email_for(name, nip),
                units[index % 3],
                "Biro Umum",
                "Analis SDM Aparatur",
                rng.choice(GOLONGAN)[1],
                "",
            ]
        )
    rows[2][1] = f"Dr. {rows[2][1]}, M.Si."
    rows[5][0] = rows[5][0][:17]  # a digit lost
    rows[7][3] = ""  # no unit
    rows[9][7] = "CLTN"
    rows[10][1] = "I Gusti Ngurah Putu Artha"
    rows[11][1] = "Ni Luh Made Sukerti"
    return rows


def assessment_rows(nips: list[str]) -> list[list[str]]:
    """Assessed levels for some people, in both date formats, with a few bad rows."""
    competencies = ["TEK-PAI-01", "MAN-INTEG", "SOS-KULT"]
    rows: list[list[str]] = []
    for index, nip in enumerate(nips[:12]):
        date = "15-03-2024" if index % 2 else "2024-03-15"
        rows.append([nip, competencies[index % 3], str(index % 5 + 1), date])
    rows.append([nips[0], "MAN-INTEG", "6", "2024-03-15"])  # level out of range
    rows.append([nips[1], "MAN-INTEG", "3", "2024/03/15"])  # unknown date format
    rows.append(["1.97501E+17", "MAN-INTEG", "3", "2024-03-15"])
    rows.append([nips[2], "", "3", "2024-03-15"])  # no competency
    return rows


# --- the template plugin's sample ---------------------------------------------------------------
CONTOH_HEADER = ["NIP", "Nama", "Email", "Satker", "Jabatan", "Golongan", "Keterangan"]
CONTOH_GIVEN = ["Yohanes", "Daniel", "Samuel", "Ruth", "Maria", "Debora", "Yosua", "Elisabeth"]
CONTOH_FAMILY = ["Simanjuntak", "Pardede", "Lumbantobing", "Sitompul", "Manurung", "Tambunan"]


def contoh_rows(rng: random.Random, count: int = 12) -> list[list[str]]:
    """The template plugin's sample: a dozen people, a mononym and three bad rows."""
    rows: list[list[str]] = []
    for _ in range(count):
        female = rng.random() < 0.5
        nip = make_nip(rng, female)
        name = f"{rng.choice(CONTOH_GIVEN)} {rng.choice(CONTOH_FAMILY)}"
        rows.append(
            [
                nip,
                name,
                email_for(name, nip),
                "Kanwil Kemenag Prov. Sumatera Utara",
                "Penyuluh Agama Kristen",
                rng.choice(GOLONGAN)[1],
                "Aktif",
            ]
        )
    rows[1][1] = f"Pdt. {rows[1][1]}, M.Th."
    rows[3][1] = "Tiurma"
    rows[5][6] = "Pensiun"
    rows[7][0] = "1.98001E+17"
    rows[8][1] = ""
    rows[9][2] = "yohanes@@kemenag.go.id"
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """Plain UTF-8 CSV with ``,``."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def main(seed: int = 20240315) -> None:
    """Write every sample file next to this script."""
    writers: list[tuple[str, Callable[[Path, random.Random], None]]] = [
        ("pendis.csv", write_pendis),
        ("bimas_islam.xlsx", write_bimas),
    ]
    for offset, (name, write) in enumerate(writers):
        write(HERE / name, random.Random(seed + offset))
    generic = generic_rows(random.Random(seed + 10))
    write_csv(HERE / "generic.csv", GENERIC_HEADER, generic)
    write_csv(
        HERE / "assessments.csv",
        ["nip", "kompetensi", "level", "tanggal"],
        assessment_rows([row[0] for row in generic if len(row[0]) == 18]),
    )
    write_csv(
        HERE.parent / "template" / "tests" / "sample.csv",
        CONTOH_HEADER,
        contoh_rows(random.Random(seed + 20)),
    )


if __name__ == "__main__":
    main()
