"""The text a bench.guard_corpus share's files are made of: the words, names, topics,
departments and years that both its formats (bench.guard_formats) and its layout
(bench.guard_corpus) draw from; sentences, paragraphs, people and dates made of them; and the
lines of logs, CSV exports and SQL dumps, which bench.guard_workloads also appends to files.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

_VOCABULARY = """the of and to in for on with by from at as is are be will was this that all
budget report meeting project contract invoice staff council service review annual quarterly plan
policy draft final approved pending request response agreement schedule delivery payment account
balance department office team manager director resident citizen permit application grant tender
funding supplier audit compliance risk safety training recruitment salary overtime leave holiday
travel expense receipt order purchase asset inventory vehicle fleet road bridge park library school
housing water waste energy lighting building maintenance repair inspection survey consultation
public notice committee board minutes agenda action item decision summary analysis forecast target
outcome performance quality improvement strategy digital system network server backup security
incident ticket support user access password update migration upgrade license document record
archive folder share portal website email phone letter address district region county city town
north south east west central new current previous next first second third monthly weekly total
net gross increase decrease estimate actual variance cost price rate fee charge tax revenue scope
deadline milestone phase stage requirement design proposal feedback approval signature deputy"""
WORDS = tuple(_VOCABULARY.split())
_NAMES = """Anna Ben Carla David Elena Farid Greta Hugo Ines Jonas Karin Luca Maria Nils Olga Paul
Rita Sven Tara Umar Vera Yusuf Zoe Malik|Andersen Becker Costa Dubois Eriksen Fischer Garcia Hansen
Ivanova Jensen Keller Lopez Meyer Novak Olsen Petrov Quinn Rossi Schmidt Tanaka Weber Young Silva"""
FIRST, LAST = (tuple(part.split()) for part in _NAMES.split("|"))
TOPICS = ("budget", "procurement", "road maintenance", "staff survey", "IT security", "housing",
          "grant application", "annual report", "tender", "audit", "recruitment", "training",
          "fleet", "water supply", "waste collection", "public consultation", "library events",
          "health and safety", "parking", "street lighting")
DEPTS = {"Finance": ("Invoices", "Budgets", "Payroll", "Audit", "Procurement"),
         "HR": ("Recruitment", "Contracts", "Training", "Policies", "Staff Surveys"),
         "Legal": ("Contracts", "Cases", "Opinions", "Tenders"),
         "Communications": ("Press Releases", "Newsletters", "Events", "Social Media"),
         "Marketing": ("Campaigns", "Brand", "Reports"),
         "Operations": ("Fleet", "Facilities", "Maintenance", "Waste"),
         "Management": ("Board Meetings", "Strategy", "Correspondence"),
         "Projects": ("Harbour Renewal", "Green Corridor", "Digital Services", "Schools 2030",
                      "Flood Defence", "Town Hall Refit", "Smart Lighting", "Cycle Network")}
YEARS = tuple(range(2019, 2026))
APPS = ("case-portal", "intranet", "payroll-sync", "gis-tools")
SERVICES = ("auth", "web", "mail", "sync", "vpn", "print", "backup", "db")
IDENTS = ("record", "amount", "user", "case", "item", "total", "invoice", "ticket", "config",
          "path", "status", "entry", "limit", "owner", "region", "budget", "permit", "report")
VERBS = ("get", "load", "save", "parse", "build", "check", "update", "render", "sync", "export")


def sentence(rng: random.Random) -> str:
    text = " ".join(rng.choices(WORDS, k=rng.randint(5, 16)))
    if rng.random() < 0.25:
        text += f" {person(rng)}"
    if rng.random() < 0.2:
        text += f" {rng.randint(2, 99999)}"
    return text[0].upper() + text[1:] + "."


def paragraphs(rng: random.Random, nbytes: int) -> list[str]:
    out: list[str] = []
    total = 0
    while total < nbytes:
        out.append(" ".join(sentence(rng) for _ in range(rng.randint(2, 6))))
        total += len(out[-1]) + 1
    return out


def when(rng: random.Random) -> datetime:
    """A moment in the share's years."""
    return datetime(YEARS[0], 1, 1, tzinfo=UTC) + timedelta(
        seconds=int(rng.random() * 86400 * 365 * len(YEARS)))


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


# Lines of logs, CSV exports and SQL dumps.

LEVELS = ("INFO",) * 8 + ("DEBUG",) * 5 + ("WARN",) * 2 + ("ERROR",)
MESSAGES = ("user {u} logged in from 10.{a}.{b}.{c}", "GET /api/{w}/{n} 200 {ms}ms",
            "POST /api/{w} 201 {ms}ms", "job {w}-{n} finished in {ms} ms",
            "connection from 10.{a}.{b}.{c} closed", "cache miss for key {w}:{n}",
            "retrying {w} upload (attempt {a})", "disk usage {a}% on /srv/share",
            "session {n} expired for {u}", "failed to deliver mail to {u}@agency.example: timeout")


def log_text(rng: random.Random, nbytes: int, start: datetime | None = None) -> str:
    t, service, pid = start or when(rng), rng.choice(SERVICES), rng.randint(300, 40000)
    lines: list[str] = []
    total = 0
    while total < nbytes:
        r = rng.getrandbits(64)  # one draw, sliced, for the line's numbers: logs are bulky
        t += timedelta(milliseconds=r & 0xFFFF)
        msg = rng.choice(MESSAGES).format(
            u=FIRST[(r >> 16) % len(FIRST)].lower(), w=rng.choice(WORDS), n=(r >> 20) & 0xFFFF,
            ms=(r >> 36) & 0x7FF, a=(r >> 47) & 0xFF, b=(r >> 55) & 0xFF, c=(r >> 24) & 0xFF)
        lines.append(f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z "
                     f"{LEVELS[(r >> 40) & 15]:5} {service}[{pid}]: {msg}\n")
        total += len(lines[-1])
    return "".join(lines)


CSV_HEADERS = {
    "invoices": ("invoice_no", "date", "supplier", "description", "net", "vat", "total", "status"),
    "staff": ("employee_id", "first_name", "last_name", "department", "email", "start_date"),
    "assets": ("asset_tag", "item", "location", "purchased", "cost", "condition")}


def csv_rows(rng: random.Random, schema: str, start: int, count: int) -> str:
    """`count` data rows of a CSV_HEADERS schema numbered from `start` (no header line)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    for i in range(start, start + count):
        r = rng.getrandbits(64)  # one draw, sliced: exports are bulky
        day = f"{YEARS[r % len(YEARS)]}-{(r >> 4) % 12 + 1:02d}-{(r >> 8) % 28 + 1:02d}"
        first, last, net = FIRST[(r >> 13) % len(FIRST)], LAST[(r >> 18) % len(LAST)], \
            ((r >> 23) % 2_000_000 + 100) / 100
        row: list[object] = [f"A{i:07d}", IDENTS[(r >> 44) % len(IDENTS)], SERVICES[(r >> 50) % 8],
                             day, f"{net / 10:.1f}", ("good", "fair", "poor")[(r >> 53) % 3]]
        if schema == "invoices":
            row = [f"INV-{i:06d}", day, f"{last} {('Ltd', 'GmbH', 'AS')[(r >> 44) % 3]}",
                   " ".join(rng.choices(WORDS, k=4)), f"{net:.2f}", f"{net * .25:.2f}",
                   f"{net * 1.25:.2f}", ("paid", "open", "overdue")[(r >> 47) % 3]]
        elif schema == "staff":
            email = f"{first}.{last}@agency.example".lower()
            row = [i, first, last, tuple(DEPTS)[(r >> 44) % len(DEPTS)], email, day]
        out.writerow(row)
    return buf.getvalue()


SQL_TABLES = {"citizens": "`id` int NOT NULL, `name` varchar(80), `email` varchar(120), "
                          "`district` varchar(40), `created` datetime",
              "cases": "`id` int NOT NULL, `citizen_id` int, `subject` varchar(200), "
                       "`status` varchar(20), `amount` decimal(10,2), `opened` datetime"}


def sql_row(rng: random.Random, table: str, i: int) -> str:
    """One row tuple of a SQL_TABLES table; the dump's INSERT lines join 100 with ','."""
    r, stamp = rng.getrandbits(64), f"'{when(rng):%Y-%m-%d %H:%M:%S}'"
    if table == "citizens":
        first, last = FIRST[r % len(FIRST)], LAST[(r >> 8) % len(LAST)]
        return (f"({i},'{first} {last}','{first.lower()}.{last.lower()}{i}@mail.example',"
                f"'{WORDS[(r >> 16) % len(WORDS)]}',{stamp})")
    status = ("open", "closed", "waiting")[r % 3]
    return (f"({i},{(r >> 8) % 99999 + 1},'{' '.join(rng.choices(WORDS, k=6))}','{status}',"
            f"{(r >> 28) % 1_000_000 / 100},{stamp})")
