"""The unit dashboard: one self-contained HTML file, aggregates only, charts as inline SVG.

Opening it needs no network: no script, no stylesheet or font from elsewhere, no image URL.
The charts are drawn by matplotlib (``Figure`` objects, no pyplot and no global backend, so
it is safe in a thread) into SVG text that is inlined in the page; a Content-Security-Policy
``default-src 'none'`` makes a browser refuse any outside resource even if one slipped in.
Text is drawn as SVG ``<text>`` (``svg.fonttype: none``): searchable, selectable, small.

No NIP and no name appears in the dashboard: counts, shares and JP only. Satker names are
places, not people. The page is in Indonesian, the language of the people who read it.

Figures:

* **Sebaran JP** - histogram of JP per person in the year, bars under the minimum in amber,
  the rest in green, the minimum as a dashed line;
* **Pelatihan selesai per bulan** - completions per month of the year;
* **Penutupan kesenjangan per kompetensi** - completions per competency (coloured by kind),
  stacked with the gaps still open when ``open_by_competency`` is given;
* **Satker** - share meeting the minimum in the largest work units.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import itertools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moodle_bridge.mappings import COMPETENCY_KINDS, Mappings
from moodle_bridge.reports.ledger import ALL_UNITS, WIB, Ledger

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CHART_IDS", "DashboardStats", "dashboard_html", "dashboard_stats"]

#: The ``id`` of each chart's ``<figure>`` in the page, in page order.
CHART_IDS: tuple[str, ...] = ("chart-jp", "chart-month", "chart-competency", "chart-satker")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
_KIND_LABELS = {
    "teknis": "Teknis",
    "manajerial": "Manajerial",
    "sosial_kultural": "Sosial kultural",
}
_KIND_COLOURS = {"teknis": "#2f6f9f", "manajerial": "#2a9d8f", "sosial_kultural": "#c9a227"}
_UNKNOWN_COLOUR = "#8d99ae"
_BELOW = "#e76f51"
_ABOVE = "#2a9d8f"
_INK = "#1d3557"
_OPEN = "#d9dee5"
#: Competencies and satker shown by name; further competencies are summed into one bar.
_TOP = 16
_TOP_SATKER = 12
#: The share meeting the JP minimum shown in green (below it: amber). A reading aid, not a rule:
#: the law gives every ASN the right to the minimum.
_TARGET_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class DashboardStats:
    """The headline numbers of the dashboard."""

    headcount: int
    #: People with at least one enrolment (``None``: enrolments not given).
    enrolled_people: int | None
    #: Enrolments the bridge made for these people (``None``: not given).
    enrolments: int | None
    #: People who completed at least one training in the year.
    completed_people: int
    #: Trainings completed in the year.
    completions: int
    #: completions / enrolments, at most 1 (``None`` without enrolments).
    completion_rate: float | None
    meeting_minimum: int
    #: meeting_minimum / headcount (0 for an empty unit).
    share_meeting_minimum: float
    total_jp: int
    #: Open gaps of these people (``None``: not given).
    open_gaps: int | None


def dashboard_stats(ledger: Ledger) -> DashboardStats:
    """The headline numbers of ``ledger`` (see :class:`DashboardStats`)."""
    people = ledger.people
    known = [p.enrolled for p in people if p.enrolled is not None]
    enrolments = sum(known) if known else None
    enrolled_people = (
        None if enrolments is None else sum(1 for p in people if (p.enrolled or 0) > 0)
    )
    completions = len(ledger.trainings)
    rate = None if not enrolments else min(1.0, completions / enrolments)
    gaps = [p.open_gaps for p in people if p.open_gaps is not None]
    meeting = ledger.meeting_minimum
    return DashboardStats(
        headcount=len(people),
        enrolled_people=enrolled_people,
        enrolments=enrolments,
        completed_people=sum(1 for p in people if p.trainings > 0),
        completions=completions,
        completion_rate=rate,
        meeting_minimum=meeting,
        share_meeting_minimum=meeting / len(people) if people else 0.0,
        total_jp=sum(p.jp for p in people),
        open_gaps=sum(gaps) if gaps else None,
    )


def dashboard_html(
    ledger: Ledger,
    *,
    mappings: Mapping[str, Mappings] | None = None,
    open_by_competency: Mapping[str, int] | None = None,
    organiser: str = "",
    generated: dt.datetime | None = None,
) -> str:
    """The dashboard page of ``ledger`` as one HTML document (see the module)."""
    stats = dashboard_stats(ledger)
    names = _competency_names(mappings or {})
    when = (generated or dt.datetime.now(WIB)).astimezone(WIB)
    unit = "Semua unit" if ledger.unit == ALL_UNITS else ledger.unit
    charts = [
        (CHART_IDS[0], f"Sebaran JP per pegawai, {ledger.year}", _jp_chart(ledger)),
        (CHART_IDS[1], f"Pelatihan selesai per bulan, {ledger.year}", _month_chart(ledger)),
        (
            CHART_IDS[2],
            "Penutupan kesenjangan per kompetensi",
            _competency_chart(ledger, names, open_by_competency),
        ),
        (
            CHART_IDS[3],
            f"Satker terbesar: pegawai yang memenuhi {ledger.jp_minimum} JP",
            _satker_chart(ledger),
        ),
    ]
    figures = "\n".join(
        f'<figure class="chart" id="{cid}" aria-label="{html.escape(title)}">'
        f"{_inline_svg(svg, cid, title)}</figure>"
        for cid, title, svg in charts
    )
    title = f"Dasbor pengembangan kompetensi ASN - {unit} - {ledger.year}"
    subtitle = " · ".join(
        part
        for part in (
            html.escape(organiser),
            f"Data sampai {when:%Y-%m-%d %H:%M} WIB",
            f"1 JP = 45 menit; hak minimal {ledger.jp_minimum} JP per tahun",
        )
        if part
    )
    return _PAGE.format(
        title=html.escape(title),
        subtitle=subtitle,
        cards=_cards(stats, ledger),
        figures=figures,
        year=ledger.year,
        minimum=ledger.jp_minimum,
        target=f"{_TARGET_SHARE:.0%}",
    )


# --- the page ------------------------------------------------------------------------------------
_PAGE = """<!DOCTYPE html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>
:root {{ --ink: #1d3557; --muted: #5c677d; --line: #e3e7ee; --bg: #f5f7fa; --ok: #2a9d8f;
        --warn: #e76f51; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.45 "Segoe UI", "Noto Sans", "DejaVu Sans", Arial, sans-serif; }}
header {{ background: var(--ink); color: #fff; padding: 22px 32px 18px; }}
header h1 {{ margin: 0 0 4px; font-size: 24px; font-weight: 600; }}
header p {{ margin: 0; color: #c8d3e6; font-size: 13px; }}
main {{ max-width: 1240px; margin: 0 auto; padding: 20px 24px 32px; }}
.cards {{ display: grid; grid-template-columns: repeat(4, 1fr); gap: 14px;
          margin-bottom: 20px; }}
@media (max-width: 800px) {{ .cards {{ grid-template-columns: repeat(2, 1fr); }} }}
.card {{ background: #fff; border: 1px solid var(--line); border-radius: 10px;
         padding: 14px 16px; }}
.card .label {{ color: var(--muted); font-size: 13px; }}
.card .value {{ font-size: 30px; font-weight: 650; margin: 2px 0; }}
.card .note {{ color: var(--muted); font-size: 12px; }}
.card.ok .value {{ color: var(--ok); }}
.card.warn .value {{ color: var(--warn); }}
.bar {{ height: 6px; background: var(--line); border-radius: 3px; margin-top: 8px;
        overflow: hidden; }}
.bar span {{ display: block; height: 100%; background: var(--ok); }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr));
           gap: 16px; }}
.chart {{ margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 10px;
          padding: 10px; }}
.chart svg {{ display: block; width: 100%; height: auto; }}
footer {{ color: var(--muted); font-size: 12px; padding: 16px 0 0; }}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
<p>{subtitle}</p>
</header>
<main>
<section class="cards">
{cards}
</section>
<section class="charts">
{figures}
</section>
<footer>Angka agregat dari catatan penyelesaian pelatihan Moodle (ledger moodle_bridge),
tahun {year} menurut waktu Jakarta. Hanya pelatihan yang selesai yang dihitung;
minimal {minimum} JP per tahun (UU 5/2014, PP 11/2017). Hijau: sedikitnya {target} pegawai
memenuhi {minimum} JP (acuan tampilan, bukan ketentuan).</footer>
</main>
</body>
</html>
"""


def _count(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _percent(value: float) -> str:
    return f"{value * 100:.1f}".replace(".", ",") + "%"


def _card(label: str, value: str, note: str = "", css: str = "", share: float | None = None) -> str:
    bar = ""
    if share is not None:
        bar = f'<div class="bar"><span style="width:{max(0.0, min(1.0, share)) * 100:.1f}%">'
        bar += "</span></div>"
    note_html = f'<div class="note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="card {css}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div>{note_html}{bar}</div>'
    )


def _cards(stats: DashboardStats, ledger: Ledger) -> str:
    cards = [_card("Pegawai", _count(stats.headcount), "ASN dalam laporan ini")]
    if stats.enrolled_people is not None and stats.enrolments is not None:
        cards.append(
            _card(
                "Terdaftar",
                _count(stats.enrolled_people),
                f"pegawai; {_count(stats.enrolments)} pendaftaran pelatihan",
            )
        )
    else:
        cards.append(_card("Terdaftar", "-", "data pendaftaran tidak tersedia"))
    cards.append(
        _card(
            "Menyelesaikan pelatihan",
            _count(stats.completed_people),
            f"pegawai; {_count(stats.completions)} pelatihan selesai",
        )
    )
    if stats.completion_rate is not None:
        cards.append(
            _card(
                "Tingkat penyelesaian",
                _percent(stats.completion_rate),
                "pelatihan selesai / pendaftaran",
                share=stats.completion_rate,
            )
        )
    else:
        cards.append(_card("Tingkat penyelesaian", "-", "data pendaftaran tidak tersedia"))
    share = stats.share_meeting_minimum
    cards.append(
        _card(
            f"Memenuhi {ledger.jp_minimum} JP",
            _percent(share),
            f"{_count(stats.meeting_minimum)} dari {_count(stats.headcount)} pegawai",
            "ok" if share >= _TARGET_SHARE else "warn",
            share=share,
        )
    )
    average = stats.total_jp / stats.headcount if stats.headcount else 0.0
    cards.append(
        _card(
            "Rata-rata JP",
            f"{average:.1f}".replace(".", ","),
            f"per pegawai; total {_count(stats.total_jp)} JP",
        )
    )
    if stats.open_gaps is not None:
        cards.append(_card("Kesenjangan terbuka", _count(stats.open_gaps), "kompetensi"))
    return "\n".join(cards)


# --- SVG ---------------------------------------------------------------------------------------
_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_IDS = re.compile(r'\bid="([^"]+)"')


def _inline_svg(svg: str, prefix: str, title: str) -> str:
    """matplotlib's SVG document as an element of the page: no XML prologue or DOCTYPE, no
    namespace URLs (the HTML parser supplies them), ``href`` instead of ``xlink:href``,
    ids prefixed so the charts' ids do not collide, and a title for screen readers."""
    text = _PROLOGUE.sub("", svg, count=1)
    text = _NAMESPACES.sub("", text)
    text = text.replace("xlink:href=", "href=")
    for ident in sorted(set(_IDS.findall(text)), key=len, reverse=True):
        new = f"{prefix}-{ident}"
        text = text.replace(f'id="{ident}"', f'id="{new}"')
        text = text.replace(f"url(#{ident})", f"url(#{new})")
        text = text.replace(f'href="#{ident}"', f'href="#{new}"')
    text = text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(title)}" ', 1)
    return text.strip()


def _figure(height: float = 4.0) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.2, height), layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    for spine in axes.spines.values():
        spine.set_color("#9aa5b1")
    axes.tick_params(colors="#394b59", labelsize=9)
    axes.grid(axis="y", color="#e3e7ee", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure, axes


def _svg(figure: Figure) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(
        {
            "svg.hashsalt": "moodle-bridge",
            "svg.fonttype": "none",
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Noto Sans", "Liberation Sans", "Arial"],
        }
    ):
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return buffer.getvalue()


def _labels(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title, loc="left", fontsize=12, fontweight="bold", color=_INK, pad=10)
    axes.set_xlabel(xlabel, fontsize=10, color="#394b59")
    axes.set_ylabel(ylabel, fontsize=10, color="#394b59")


def _empty(axes: Axes, text: str = "Belum ada data") -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", color="#5c677d")


def _jp_chart(ledger: Ledger) -> str:
    from matplotlib.patches import Patch

    figure, axes = _figure()
    values = [p.jp for p in ledger.people]
    minimum = ledger.jp_minimum
    width = 5
    top = max([*values, minimum * 2, 40])
    edges = sorted({*range(0, top + width + 1, width), minimum})
    counts = [0] * (len(edges) - 1)
    for value in values:
        # Bins are [low, high): a person with exactly the minimum sits in the first green bar.
        low, high = 0, len(edges) - 2
        while low < high:
            mid = (low + high + 1) // 2
            if edges[mid] <= value:
                low = mid
            else:
                high = mid - 1
        counts[low] += 1
    lefts = edges[:-1]
    widths = [b - a for a, b in itertools.pairwise(edges)]
    colours = [_ABOVE if left >= minimum else _BELOW for left in lefts]
    axes.bar(lefts, counts, width=widths, align="edge", color=colours, edgecolor="white")
    axes.axvline(minimum, color=_INK, linestyle="--", linewidth=1.6)
    axes.annotate(
        f"minimal {minimum} JP",
        xy=(minimum, 1),
        xycoords=("data", "axes fraction"),
        xytext=(4, -4),
        textcoords="offset points",
        va="top",
        fontsize=9,
        color=_INK,
    )
    meeting = sum(1 for v in values if v >= minimum)
    axes.legend(
        handles=[
            Patch(color=_BELOW, label=f"di bawah {minimum} JP ({_count(len(values) - meeting)})"),
            Patch(color=_ABOVE, label=f"memenuhi {minimum} JP ({_count(meeting)})"),
        ],
        loc="upper right",
        frameon=False,
        fontsize=9,
    )
    axes.set_xlim(0, edges[-1])
    if not values:
        _empty(axes)
    _labels(
        axes,
        f"Sebaran JP per pegawai, {ledger.year}",
        f"JP yang diselesaikan tahun {ledger.year} (1 JP = 45 menit)",
        "Jumlah pegawai",
    )
    return _svg(figure)


def _month_chart(ledger: Ledger) -> str:
    figure, axes = _figure()
    per_month = Counter(t.end.month for t in ledger.trainings)
    counts = [per_month.get(m, 0) for m in range(1, 13)]
    bars = axes.bar(_MONTHS, counts, color="#2f6f9f", width=0.7)
    axes.bar_label(
        bars, labels=[_count(c) if c else "" for c in counts], fontsize=8, color="#394b59"
    )
    axes.margins(y=0.12)
    if not any(counts):
        _empty(axes)
    _labels(
        axes,
        f"Pelatihan selesai per bulan, {ledger.year}",
        f"Bulan penyelesaian ({ledger.year}, WIB)",
        "Pelatihan selesai",
    )
    return _svg(figure)


#: One bar of the competency chart: label, closed (completions), still open, kind.
_CompetencyBar = tuple[str, int, int, str]


def _competency_bars(
    ledger: Ledger, names: Mapping[str, tuple[str, str]], open_by: Mapping[str, int] | None
) -> list[_CompetencyBar]:
    """The largest competencies by closed + open gaps (the rest summed), the largest last."""
    closed = Counter(t.competency or "" for t in ledger.trainings)
    kinds = {t.competency: t.kind for t in ledger.trainings}
    still = Counter({k: v for k, v in (open_by or {}).items() if v > 0})
    order = sorted(set(closed) | set(still), key=lambda c: (-(closed[c] + still[c]), c))
    shown, rest = order[:_TOP], order[_TOP:]
    bars: list[_CompetencyBar] = []
    for code in shown:
        name, kind = names.get(code, (code or "(tanpa kompetensi)", kinds.get(code, "")))
        bars.append((_short(name), closed[code], still[code], kind or kinds.get(code, "")))
    if rest:
        label = f"Lainnya ({len(rest)} kompetensi)"
        bars.append((label, sum(closed[c] for c in rest), sum(still[c] for c in rest), ""))
    bars.reverse()  # the largest at the top
    return bars


def _competency_chart(
    ledger: Ledger, names: Mapping[str, tuple[str, str]], open_by: Mapping[str, int] | None
) -> str:
    bars = _competency_bars(ledger, names, open_by)
    figure, axes = _figure(max(3.2, 0.9 + 0.34 * max(1, len(bars))))
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", color="#e3e7ee", linewidth=0.8)
    labels = [b[0] for b in bars]
    done = [b[1] for b in bars]
    colours = [_KIND_COLOURS.get(b[3], _UNKNOWN_COLOUR) for b in bars]
    axes.barh(labels, done, color=colours, height=0.65)
    if open_by is not None:
        axes.barh(labels, [b[2] for b in bars], left=done, color=_OPEN, height=0.65)
    for index, (_, closed, still, _) in enumerate(bars):
        text = _count(closed) if open_by is None else f"{_count(closed)} / {_count(closed + still)}"
        axes.annotate(
            text,
            xy=(closed + (still if open_by is not None else 0), index),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color="#394b59",
        )
    axes.margins(x=0.12)
    _kind_legend(figure, {b[3] for b in bars}, with_open=open_by is not None)
    if not bars:
        _empty(axes)
    xlabel = (
        "Kesenjangan ditutup (pelatihan selesai) / seluruh kesenjangan"
        if open_by is not None
        else f"Pelatihan selesai tahun {ledger.year} (kesenjangan yang ditutup)"
    )
    _labels(axes, "Penutupan kesenjangan per kompetensi", xlabel, "Kompetensi")
    return _svg(figure)


def _kind_legend(figure: Figure, kinds: set[str], *, with_open: bool) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(color=_KIND_COLOURS[k], label=f"{_KIND_LABELS[k]} (selesai)")
        for k in COMPETENCY_KINDS
        if k in kinds
    ]
    if with_open:
        handles.append(Patch(color=_OPEN, label="masih terbuka"))
    if handles:
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=len(handles),
            frameon=False,
            fontsize=8,
        )


def _satker_chart(ledger: Ledger) -> str:
    size = Counter(p.satker or "(tanpa satker)" for p in ledger.people)
    meeting = Counter(p.satker or "(tanpa satker)" for p in ledger.people if p.meets_minimum)
    largest = sorted(size, key=lambda s: (-size[s], s))[:_TOP_SATKER]
    largest.reverse()
    figure, axes = _figure(max(3.2, 0.9 + 0.34 * max(1, len(largest))))
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", color="#e3e7ee", linewidth=0.8)
    shares = [100.0 * meeting[s] / size[s] for s in largest]
    colours = [_ABOVE if share >= 100 * _TARGET_SHARE else _BELOW for share in shares]
    axes.barh([_short(s) for s in largest], shares, color=colours, height=0.65)
    for index, satker in enumerate(largest):
        axes.annotate(
            f"{shares[index]:.0f}% dari {_count(size[satker])}",
            xy=(shares[index], index),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color="#394b59",
        )
    axes.set_xlim(0, 118)
    axes.set_xticks([0, 20, 40, 60, 80, 100])
    axes.axvline(100 * _TARGET_SHARE, color=_INK, linestyle=":", linewidth=1)
    if not largest:
        _empty(axes)
    _labels(
        axes,
        f"Satker terbesar: pegawai yang memenuhi {ledger.jp_minimum} JP",
        f"Pegawai yang memenuhi {ledger.jp_minimum} JP (%; garis titik: {_TARGET_SHARE:.0%})",
        "Satuan kerja",
    )
    return _svg(figure)


def _short(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _competency_names(mappings: Mapping[str, Mappings]) -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for _unit, m in sorted(mappings.items()):
        for code, competency in m.competencies.items():
            names.setdefault(code, (competency.name, competency.kind))
    return names
