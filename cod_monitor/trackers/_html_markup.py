"""Building blocks of the static HTML report's markup.

Escaping and number formats, the frame, lines and legend of an inline SVG chart,
tables, summary cards and the page's stylesheet. Nothing here knows about forecasts:
:mod:`cod_monitor.trackers.html` assembles these pieces into the report. Needs only
the standard library.
"""

from __future__ import annotations

import html
import math

__all__ = [
    "HEIGHT",
    "MARGIN_BOTTOM",
    "MARGIN_LEFT",
    "MARGIN_RIGHT",
    "MARGIN_TOP",
    "STYLESHEET",
    "WIDTH",
    "Axes",
    "card",
    "chart_legend",
    "esc",
    "fmt_acc",
    "fmt_num",
    "html_table",
    "is_finite",
    "kv_table",
    "svg_chart",
    "svg_frame",
    "svg_polyline",
]

#: Size of every chart, in SVG pixels.
WIDTH, HEIGHT = 560, 300
#: Margins around a chart's plot area, in SVG pixels (room for ticks and axis labels).
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 60, 18, 14, 44

#: The page's inline stylesheet.
STYLESHEET = """
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#222;
margin:0;background:#f6f7f9}
header{background:#12263a;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header .meta{opacity:.8;font-size:12.5px}
main{padding:12px 24px;max-width:1240px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:14px 0;padding:12px 16px}
h2{font-size:17px;margin:4px 0 10px} h3{font-size:14.5px;margin:14px 0 6px;color:#444}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #e1e4e8;border-radius:5px;padding:8px 12px;min-width:120px}
.card .v{font-size:19px;font-weight:600} .card .l{font-size:11.5px;color:#666}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.tick{font-size:10.5px;fill:#555} .axis{font-size:11.5px;fill:#333}
.legend{font-size:11.5px;color:#333;margin:2px 0 0 56px;max-width:500px}
.li{display:inline-block;margin-right:12px}
.sw{display:inline-block;width:16px;height:11px;margin-right:4px;vertical-align:top}
.sw.dot{width:9px;height:9px;border-radius:50%;margin-top:2px}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}
th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#fafbfc;color:#444} td:last-child,th:last-child{text-align:left;white-space:normal}
table.kv td,table.kv th{text-align:left}
.verdict.kept{color:#1a7f37;font-weight:600} .verdict.dropped{color:#8a8a8a}
.st.below{color:#d73027;font-weight:600} .st.above{color:#4575b4} .st.in-band{color:#1a9850}
.alerts li{margin:4px 0} .alerts .below_band,.alerts .evaluation_failing{color:#b31d15}
.alerts .recovered{color:#1a7f37} .muted{color:#888}
details summary{cursor:pointer;color:#0366d6}
"""


# --------------------------------------------------------------------------- text
def esc(x) -> str:
    """``str(x)`` escaped for HTML text and quoted attribute values.

    Parameters
    ----------
    x : object
        Any value; it is converted with ``str`` first.

    Returns
    -------
    str
        Safe inside an element and inside a double-quoted attribute.
    """
    return html.escape(str(x), quote=True)


def is_finite(x) -> bool:
    """Whether ``x`` is a finite ``int`` or ``float`` (``bool`` is not a number here).

    Parameters
    ----------
    x : object
        A value read from the report's input, which may be ``None`` or a string.

    Returns
    -------
    bool
    """
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_acc(x) -> str:
    """An accuracy with three decimals, or an en dash when it is missing or not finite.

    Parameters
    ----------
    x : float or None
        An accuracy in [0, 1].

    Returns
    -------
    str
        For example ``'0.512'``, or ``'–'``.
    """
    return f"{x:.3f}" if is_finite(x) else "–"


def fmt_num(x) -> str:
    """A number for a table cell: thousands separators or three to four significant digits.

    Parameters
    ----------
    x : object
        Integers below ``1e7`` keep every digit; large, tiny and other floats are
        shortened; anything that is not a number is escaped as text.

    Returns
    -------
    str
        Safe to insert into HTML.
    """
    if isinstance(x, bool) or x is None:
        return esc(x)
    if isinstance(x, int):
        return f"{x:,}" if abs(x) < 1e7 else f"{x:.3g}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3g}"
        return f"{x:.4g}"
    return esc(x)


# --------------------------------------------------------------------------- charts
def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


class Axes:
    """Maps data coordinates to the SVG pixels of one chart's plot area.

    Parameters
    ----------
    xlo, xhi : float
        Range of the x axis (positive when ``logx``); an empty range is widened.
    ylo, yhi : float
        Range of the y axis; an empty range becomes ``[ylo, ylo + 1]``.
    logx : bool, default False
        Logarithmic x axis.

    Attributes
    ----------
    xlo, xhi : float
        The x range, in ``log10`` units when ``logx``.
    ylo, yhi : float
        The y range.
    """

    def __init__(self, xlo, xhi, ylo, yhi, *, logx=False):
        self.logx = logx
        self.xlo, self.xhi = self._tx(xlo), self._tx(xhi)
        if self.xhi <= self.xlo:
            self.xlo, self.xhi = self.xlo - 0.5, self.xhi + 0.5
        self.ylo, self.yhi = ylo, (yhi if yhi > ylo else ylo + 1.0)

    def _tx(self, x):
        return math.log10(x) if self.logx else x

    def x(self, v) -> float:
        """Horizontal pixel of the data value ``v``."""
        t = (self._tx(v) - self.xlo) / (self.xhi - self.xlo)
        return MARGIN_LEFT + t * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, v) -> float:
        """Vertical pixel of the data value ``v``."""
        t = (v - self.ylo) / (self.yhi - self.ylo)
        return HEIGHT - MARGIN_BOTTOM - t * (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)


def svg_frame(ax: Axes, xlabel: str, ylabel: str) -> list[str]:
    """The plot area, grid lines, tick labels and axis labels of a chart.

    Parameters
    ----------
    ax : Axes
    xlabel, ylabel : str
        Axis labels (escaped here).

    Returns
    -------
    list of str
        SVG elements, to be followed by the chart's own and passed to :func:`svg_chart`.
    """
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    out = [
        (f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
         'fill="#fff" stroke="#bbb"/>')
    ]
    for t in _nice_ticks(ax.ylo, ax.yhi, 5):
        y = ax.y(t)
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{t:.2f}</text>'
        )
    if ax.logx:
        xt = [10.0**k for k in range(math.ceil(ax.xlo), math.floor(ax.xhi) + 1)]
        labels = [f"1e{round(math.log10(t))}" for t in xt]
    else:
        xt = _nice_ticks(ax.xlo, ax.xhi, 6)
        labels = [fmt_num(int(t)) if float(t).is_integer() else f"{t:g}" for t in xt]
    for t, lab in zip(xt, labels):
        x = ax.x(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#f3f3f3"/>')
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{esc(lab)}</text>'
        )
    out.append(
        f'<text x="{(left + right) / 2:.0f}" y="{HEIGHT - 8}" text-anchor="middle" class="axis">'
        f"{esc(xlabel)}</text>"
    )
    out.append(
        f'<text transform="translate(14,{(top + bottom) / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle" class="axis">{esc(ylabel)}</text>'
    )
    return out


def svg_polyline(points, color, *, width=2.0, dash=None, opacity=1.0, cls="") -> str:
    """An unfilled SVG line through ``points``.

    Parameters
    ----------
    points : iterable of (float, float)
        Pixel coordinates.
    color : str
        Stroke colour.
    width : float, default 2.0
        Stroke width.
    dash : str, optional
        ``stroke-dasharray`` (e.g. ``'5,4'``); solid when ``None``.
    opacity : float, default 1.0
        Stroke opacity.
    cls : str, default ''
        CSS class of the element.

    Returns
    -------
    str
    """
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    d = f' stroke-dasharray="{dash}"' if dash else ""
    c = f' class="{cls}"' if cls else ""
    return (
        f'<polyline{c} points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"'
        f' stroke-opacity="{opacity}"{d}/>'
    )


def chart_legend(items) -> str:
    """The HTML legend drawn under a chart.

    Parameters
    ----------
    items : iterable of (str, str, str)
        ``(color, label, kind)`` with ``kind`` one of ``'line'``, ``'dash'``, ``'dot'``,
        ``'band'``.

    Returns
    -------
    str
    """
    parts = []
    for color, label, kind in items:
        if kind == "band":
            sw = f'<span class="sw" style="background:{color};opacity:.6"></span>'
        elif kind == "dot":
            sw = f'<span class="sw dot" style="background:{color}"></span>'
        elif kind == "dash":
            sw = f'<span class="sw" style="border-top:2px dashed {color};height:0;margin-top:6px"></span>'
        else:
            sw = f'<span class="sw" style="border-top:2px solid {color};height:0;margin-top:6px"></span>'
        parts.append(f"<span class=\"li\">{sw}{esc(label)}</span>")
    return f'<div class="legend">{"".join(parts)}</div>'


def svg_chart(body: list[str], label: str) -> str:
    """An inline ``<svg>`` element holding ``body``.

    Parameters
    ----------
    body : list of str
        SVG elements, from :func:`svg_frame` on.
    label : str
        Accessible name of the image.

    Returns
    -------
    str
    """
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{esc(label)}">' + "".join(body) + "</svg>"
    )


# --------------------------------------------------------------------------- blocks
def html_table(headers, rows, cls="") -> str:
    """A table with one header row.

    Parameters
    ----------
    headers : iterable of str
        Column titles (escaped here).
    rows : iterable of iterable of str
        Cells, already HTML.
    cls : str, default ''
        CSS class of the table.

    Returns
    -------
    str
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flatten(d, prefix=""):
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def kv_table(d) -> str:
    """A key/value table of a nested dict, keys joined with dots.

    Parameters
    ----------
    d : dict or None
        Lists show their first 20 items.

    Returns
    -------
    str
    """
    rows = []
    for k, v in _flatten(d):
        if isinstance(v, (list, tuple)):
            v = ", ".join(fmt_num(x) if isinstance(x, (int, float)) else esc(x) for x in v[:20])
        elif isinstance(v, (int, float)):
            v = fmt_num(v)
        else:
            v = esc(v)
        rows.append([esc(k), v])
    return html_table(["key", "value"], rows, "kv")


def card(value, label) -> str:
    """A summary card: a large value above a small label.

    Parameters
    ----------
    value : str
        Already HTML.
    label : str
        Escaped here.

    Returns
    -------
    str
    """
    return f'<div class="card"><div class="v">{value}</div><div class="l">{esc(label)}</div></div>'
