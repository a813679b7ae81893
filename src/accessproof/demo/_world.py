"""The simulated company: people, suppliers, systems and the entitlement catalogue of "Acme Medical".

Everything here is plain data drawn from one seeded ``random.Random`` in a fixed order, so the same seed
always gives the same company.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from accessproof.demo._common import (
    FIRST,
    HANDLE_A,
    HANDLE_B,
    LAST,
    add_months,
    ascii_name,
    aws_id,
    case_variant,
    okta_id,
    random_workday,
)

DOMAIN = "acme.com"
OKTA_ORG = "acme"
AWS_ACCOUNT = "111122223333"
GH_ORG = "acme-medical"
GH_ORG_ID = 87912345
SOURCES = {"okta": f"okta:{OKTA_ORG}", "aws": f"aws:{AWS_ACCOUNT}", "github": f"github:{GH_ORG}"}
SYSTEMS = ("okta", "aws", "github")
BUS = ("R&D", "Quality", "Manufacturing", "IT", "Finance", "Sales")
BU_WEIGHTS = (0.32, 0.15, 0.22, 0.08, 0.10, 0.13)
RND_TEAMS = ("firmware", "cloud-platform", "mobile-app", "data-science")
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_FORMULA = '=HYPERLINK("http://x","click")'

TITLES = {
    "R&D": ["Firmware Engineer", "Software Engineer", "Systems Engineer", "Test Engineer", "Data Scientist",
            "Embedded Developer"],
    "Quality": ["Quality Engineer", "Regulatory Affairs Specialist", "QA Specialist", "Validation Engineer",
                "Complaint Handling Specialist"],
    "Manufacturing": ["Production Technician", "Process Engineer", "Production Planner", "Shift Supervisor",
                      "Supply Chain Analyst"],
    "IT": ["Systems Administrator", "Cloud Engineer", "Network Engineer", "Workplace Engineer"],
    "Finance": ["Accountant", "Controller", "Payroll Specialist", "Procurement Specialist"],
    "Sales": ["Account Manager", "Clinical Sales Specialist", "Customer Success Manager", "Sales Operations Analyst"],
}


# ------------------------------------------------------------------ entitlements


@dataclass(frozen=True)
class Ent:
    """One entitlement; ``key`` is the ServiceNow catalogue item name (``Okta group: qms-approvers``)."""

    key: str
    system: str
    kind: str  # account | group | app | awsgroup | policy | team | repo | pat
    name: str  # vendor name: group name, app label, policy ARN, team slug, repo full name
    privileged: bool = False
    owner_role: str | None = None  # whose approval a privileged entitlement also needs
    perm: str | None = None  # GitHub repo permission
    vendor_id: str = ""  # Okta group / app id


def _policy(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


_CATALOGUE: list[tuple] = [
    # (system, kind, name, privileged, owner_role, perm)
    ("okta", "account", "standard user", False, None, None),
    ("okta", "group", "rnd-engineering", False, None, None),
    ("okta", "group", "quality-assurance", False, None, None),
    ("okta", "group", "manufacturing-ops", False, None, None),
    ("okta", "group", "it-operations", False, None, None),
    ("okta", "group", "finance", False, None, None),
    ("okta", "group", "sales", False, None, None),
    ("okta", "group", "external-suppliers", False, None, None),
    ("okta", "group", "qms-authors", False, None, None),
    ("okta", "group", "qms-approvers", True, "head:Quality", None),
    ("okta", "group", "design-history-file-readers", False, None, None),
    ("okta", "group", "design-history-file-editors", True, "head:R&D", None),
    ("okta", "group", "complaint-handling", False, None, None),
    ("okta", "group", "erp-purchasing", False, None, None),
    ("okta", "group", "erp-payment-approvers", True, "head:Finance", None),
    ("okta", "group", "vpn-users", False, None, None),
    ("okta", "group", "vpn-admins", True, "head:IT", None),
    ("okta", "group", "okta-admins", True, "head:IT", None),
    ("okta", "app", "Jira", False, None, None),
    ("okta", "app", "MasterControl QMS", False, None, None),
    ("okta", "app", "SAP S/4HANA", False, None, None),
    ("okta", "app", "Salesforce", False, None, None),
    ("okta", "app", "ServiceNow Fulfiller", False, None, None),
    ("okta", "app", "Tableau", False, None, None),
    ("okta", "app", "Veeva Vault", False, None, None),
    ("aws", "account", AWS_ACCOUNT, False, None, None),
    ("aws", "awsgroup", "developers", False, None, None),
    ("aws", "awsgroup", "readonly", False, None, None),
    ("aws", "awsgroup", "ops-admins", True, "head:IT", None),
    ("aws", "awsgroup", "billing", False, None, None),
    ("aws", "awsgroup", "auditors", False, None, None),
    ("aws", "awsgroup", "data-science", False, None, None),
    ("aws", "awsgroup", "vendor-operations", False, None, None),
    ("aws", "policy", _policy("ReadOnlyAccess"), False, None, None),
    ("aws", "policy", _policy("AmazonS3ReadOnlyAccess"), False, None, None),
    ("aws", "policy", _policy("AmazonS3FullAccess"), True, "head:IT", None),
    ("aws", "policy", _policy("PowerUserAccess"), True, "head:IT", None),
    ("aws", "policy", _policy("AdministratorAccess"), True, "head:IT", None),
    ("aws", "policy", _policy("IAMFullAccess"), True, "head:IT", None),
    ("aws", "policy", _policy("SecurityAudit"), False, None, None),
    ("aws", "policy", _policy("AWSBillingReadOnlyAccess"), False, None, None),
    ("aws", "policy", _policy("job-function/Billing"), True, "head:Finance", None),
    ("github", "account", GH_ORG, False, None, None),
    ("github", "team", "firmware", False, None, None),
    ("github", "team", "cloud-platform", False, None, None),
    ("github", "team", "mobile-app", False, None, None),
    ("github", "team", "data-science", False, None, None),
    ("github", "team", "qa-automation", False, None, None),
    ("github", "team", "it-infra", False, None, None),
    ("github", "team", "release-managers", True, "head:R&D", None),
    ("github", "repo", f"{GH_ORG}/firmware-core", False, None, "write"),
    ("github", "repo", f"{GH_ORG}/infra-terraform", False, None, "write"),
    ("github", "repo", f"{GH_ORG}/qms-validation", False, None, "read"),
    ("github", "pat", GH_ORG, False, None, None),
]


def _cat_item(system: str, kind: str, name: str, perm: str | None) -> str:
    if system == "okta":
        return {"account": "Okta account: standard user", "group": f"Okta group: {name}",
                "app": f"Okta app: {name}"}[kind]
    if system == "aws":
        return {"account": f"AWS IAM user: {name}", "awsgroup": f"AWS group: {name}",
                "policy": f"AWS policy: {name}"}[kind]
    return {"account": f"GitHub org membership: {name}", "team": f"GitHub team: {name}",
            "repo": f"GitHub repo: {name} ({perm})", "pat": f"GitHub fine-grained PAT: {name}"}[kind]


def build_catalogue(rng: random.Random) -> dict[str, Ent]:
    cat: dict[str, Ent] = {}
    for system, kind, name, priv, owner, perm in _CATALOGUE:
        vid = ""
        if system == "okta" and kind == "group":
            vid = okta_id(rng, "00g")
        elif system == "okta" and kind == "app":
            vid = okta_id(rng, "0oa")
        key = _cat_item(system, kind, name, perm)
        cat[key] = Ent(key=key, system=system, kind=kind, name=name, privileged=priv, owner_role=owner,
                       perm=perm, vendor_id=vid)
    return cat


OKTA_ACCOUNT = "Okta account: standard user"
AWS_ACCOUNT_ENT = f"AWS IAM user: {AWS_ACCOUNT}"
GH_ACCOUNT = f"GitHub org membership: {GH_ORG}"
ACCOUNT_ENTS = {"okta": OKTA_ACCOUNT, "aws": AWS_ACCOUNT_ENT, "github": GH_ACCOUNT}

#: Role-based ("birthright") entitlements of a business unit, per system.
BASE = {
    "R&D": {"okta": ["Okta group: rnd-engineering", "Okta app: Jira"], "aws": ["AWS group: developers"]},
    "Quality": {"okta": ["Okta group: quality-assurance", "Okta app: MasterControl QMS"],
                "aws": ["AWS group: auditors"], "github": ["GitHub team: qa-automation"]},
    "Manufacturing": {"okta": ["Okta group: manufacturing-ops", "Okta app: SAP S/4HANA"],
                      "aws": ["AWS group: readonly"]},
    "IT": {"okta": ["Okta group: it-operations", "Okta app: ServiceNow Fulfiller"], "aws": ["AWS group: readonly"],
           "github": ["GitHub team: it-infra"]},
    "Finance": {"okta": ["Okta group: finance", "Okta app: SAP S/4HANA"], "aws": ["AWS group: billing"]},
    "Sales": {"okta": ["Okta group: sales", "Okta app: Salesforce"]},
}
SUPPLIER_BASE = {
    "SUP-001": {"okta": ["Okta group: external-suppliers", "Okta app: MasterControl QMS"]},
    "SUP-002": {"okta": ["Okta group: external-suppliers"], "aws": ["AWS group: vendor-operations"],
                "github": [f"GitHub repo: {GH_ORG}/infra-terraform (write)"]},
    "SUP-003": {"okta": ["Okta group: external-suppliers", "Okta app: Jira"],
                "github": [f"GitHub repo: {GH_ORG}/firmware-core (write)"]},
}
#: Entitlements people of a business unit ask for now and then.
OPTIONAL = {
    "R&D": ["Okta group: qms-authors", "Okta group: design-history-file-readers", "Okta app: MasterControl QMS",
            "Okta group: vpn-users", f"AWS policy: {_policy('ReadOnlyAccess')}",
            f"AWS policy: {_policy('AmazonS3ReadOnlyAccess')}", f"AWS policy: {_policy('PowerUserAccess')}",
            "AWS group: data-science", "GitHub team: release-managers",
            f"GitHub repo: {GH_ORG}/infra-terraform (write)", f"GitHub fine-grained PAT: {GH_ORG}",
            "GitHub team: firmware", "GitHub team: cloud-platform", "GitHub team: mobile-app"],
    "Quality": ["Okta group: qms-authors", "Okta group: qms-approvers", "Okta group: complaint-handling",
                "Okta group: design-history-file-readers", "Okta app: Jira", "Okta app: Veeva Vault",
                "Okta group: vpn-users", f"AWS policy: {_policy('SecurityAudit')}",
                f"GitHub repo: {GH_ORG}/qms-validation (read)"],
    "Manufacturing": ["Okta group: qms-authors", "Okta group: erp-purchasing", "Okta app: MasterControl QMS",
                      "Okta group: vpn-users", f"AWS policy: {_policy('ReadOnlyAccess')}",
                      f"AWS policy: {_policy('AmazonS3ReadOnlyAccess')}"],
    "IT": ["Okta group: okta-admins", "Okta app: Jira", "Okta group: vpn-users",
           f"AWS policy: {_policy('AdministratorAccess')}", f"AWS policy: {_policy('SecurityAudit')}",
           f"AWS policy: {_policy('ReadOnlyAccess')}", f"GitHub repo: {GH_ORG}/infra-terraform (write)",
           f"GitHub fine-grained PAT: {GH_ORG}"],
    "Finance": ["Okta group: erp-purchasing", "Okta app: Tableau", "Okta group: vpn-users",
                f"AWS policy: {_policy('AWSBillingReadOnlyAccess')}"],
    "Sales": ["Okta group: complaint-handling", "Okta app: Tableau", "Okta app: Veeva Vault", "Okta group: vpn-users"],
    "supplier": ["Okta group: vpn-users"],
}
#: What a too-broad grant looks like: approved entitlement -> what was actually given.
BROADER = {
    f"AWS policy: {_policy('ReadOnlyAccess')}": f"AWS policy: {_policy('AdministratorAccess')}",
    f"AWS policy: {_policy('AmazonS3ReadOnlyAccess')}": f"AWS policy: {_policy('AmazonS3FullAccess')}",
    f"AWS policy: {_policy('SecurityAudit')}": f"AWS policy: {_policy('IAMFullAccess')}",
    f"AWS policy: {_policy('AWSBillingReadOnlyAccess')}": f"AWS policy: {_policy('job-function/Billing')}",
    "Okta group: qms-authors": "Okta group: qms-approvers",
    "Okta group: design-history-file-readers": "Okta group: design-history-file-editors",
    "Okta group: erp-purchasing": "Okta group: erp-payment-approvers",
    "Okta group: vpn-users": "Okta group: vpn-admins",
}
#: Entitlements granted under a QMS exception (policy would not allow them otherwise).
EXCEPTION_ENTS = [
    (f"AWS policy: {_policy('AdministratorAccess')}", "aws",
     "Migration of the validated data platform to the new VPC layout needs temporary administrator rights.",
     "Weekly review of the person's CloudTrail activity by IT Security"),
    (f"AWS policy: {_policy('PowerUserAccess')}", "aws",
     "Performance test campaign for the infusion-pump cloud backend.",
     "Session recording and daily review by the cloud platform lead"),
    ("Okta group: qms-approvers", "okta",
     "Deputy approver for CAPA records during the quality manager's absence.",
     "Second signature by a Quality employee on every approval"),
    ("GitHub team: release-managers", "github",
     "Release of firmware 4.2 while the release manager is on leave.",
     "Release checklist countersigned by the Head of R&D"),
    ("Okta group: erp-payment-approvers", "okta",
     "Quarter-end closing support for the payment run.",
     "Four-eyes check of each payment batch by the controller"),
]


# ------------------------------------------------------------------ people


@dataclass(eq=False)
class Transfer:
    on: date
    old_bu: str
    new_bu: str
    old_title: str
    new_title: str
    old_manager: Person
    new_manager: Person
    old_team: str | None
    new_team: str | None
    hr_event: str = ""


@dataclass(eq=False)
class Person:
    pid: str
    first: str
    last: str
    email: str
    username: str
    worker_type: str  # Employee | Contractor | Supplier
    bu: str
    title: str
    hire: date
    role: str = "staff"  # ceo | head | lead | admin | desk | security | hr | staff
    supplier: str | None = None
    manager: Person | None = None
    team: str | None = None
    term: date | None = None  # the real end of the engagement
    hr_term: bool = True  # whether HR recorded it
    transfer: Transfer | None = None
    leave: tuple[date, date] | None = None
    systems: list[str] = field(default_factory=list)
    okta_id: str = ""
    okta_login: str = ""
    okta_display: str = ""
    aws_name: str | None = None
    aws_uid: str = ""
    aws_dev: bool = False  # holds an access key
    gh_id: int = 0
    snow_email: str = ""  # how ServiceNow shows the address
    ip_office: str = ""
    ip_home: str = ""
    ua: str = ""
    hire_event: str = ""
    term_event: str = ""
    leave_events: tuple[str, str] = ("", "")

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def bu_on(self, d: date) -> str:
        if self.transfer and d >= self.transfer.on:
            return self.transfer.new_bu
        if self.transfer:
            return self.transfer.old_bu
        return self.bu

    def manager_on(self, d: date) -> Person | None:
        if self.transfer and d < self.transfer.on:
            return self.transfer.old_manager
        return self.manager

    def employed(self, d: date) -> bool:
        return self.hire <= d and (self.term is None or d < self.term)


@dataclass
class Supplier:
    sid: str
    name: str
    scope: str
    sponsor: Person | None
    contract_start: date
    contract_end: date
    qualification: str
    next_review: date
    domain: str


BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
_ISP_OCTETS = (31, 46, 77, 78, 79, 80, 84, 87, 91, 93, 95, 109, 178, 188, 212, 217)


def public_ip(rng: random.Random) -> str:
    return f"{rng.choice(_ISP_OCTETS)}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


OFFICE_IPS = ("203.0.113.10", "203.0.113.11", "203.0.113.12")
SUPPLIERS = [
    ("SUP-001", "Medisoft Validation GmbH", "Computerised system validation of QMS and MES (GAMP 5)",
     "Quality", "medisoft-validation.de"),
    ("SUP-002", "CloudOps Partners Ltd", "AWS operations support for the connected-device backend",
     "IT", "cloudops-partners.co.uk"),
    ("SUP-003", "Precision Firmware s.r.o.", "Firmware development for the infusion pump platform",
     "R&D", "precision-firmware.cz"),
]
ENDING_SUPPLIER = "SUP-003"


@dataclass
class Company:
    people: list[Person]
    by_pid: dict[str, Person]
    suppliers: list[Supplier]
    cat: dict[str, Ent]
    heads: dict[str, Person]
    ceo: Person
    admins: list[Person]
    desk: list[Person]
    security: Person
    hr: list[Person]
    start: date
    end: date  # exclusive


class _Names:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.emails: set[str] = set()
        self.handles: set[str] = set()

    def reserve(self, email: str, handle: str) -> None:
        self.emails.add(email)
        self.handles.add(handle)

    def person(self, supplier_domain: str | None = None) -> tuple[str, str, str, str]:
        rng = self.rng
        while True:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            a, b = ascii_name(first), ascii_name(last)
            if not a or not b:
                continue
            local = f"{a}.{b}" + (".ext" if supplier_domain else "")
            email = f"{local}@{DOMAIN}"
            n = 2
            while email in self.emails:
                email = f"{a}.{b}{n}{'.ext' if supplier_domain else ''}@{DOMAIN}"
                n += 1
            if rng.random() < 0.3:
                handle = f"{rng.choice(HANDLE_A)}-{rng.choice(HANDLE_B)}{rng.randrange(2, 99)}"
            else:
                handle = f"{a[0]}{b}-acme"
            while handle in self.handles:
                handle = f"{a[0]}{b}{rng.randrange(2, 99)}-acme"
            self.reserve(email, handle)
            return first, last, email, handle


def build_company(rng: random.Random, n: int, start: date, end: date) -> Company:
    """People with roles, managers, systems, and their joiner/mover/leaver life within the period."""
    names = _Names(rng)
    cat = build_catalogue(rng)
    n_sup = max(12, round(0.12 * n))
    n_con = max(4, round(0.08 * n))
    n_emp = n - n_sup - n_con
    people: list[Person] = []
    counters = {"Employee": 100000, "Contractor": 0, "Supplier": 0}

    def make(worker_type: str, bu: str, title: str, role: str = "staff", supplier: Supplier | None = None,
             hire: date | None = None) -> Person:
        first, last, email, handle = names.person(supplier.domain if supplier else None)
        counters[worker_type] += 1
        pid = {"Employee": f"{counters['Employee']}", "Contractor": f"C{counters['Contractor']:05d}",
               "Supplier": f"S{counters['Supplier']:05d}"}[worker_type]
        if hire is None:
            span = (start - date(2014, 1, 1)).days - 40
            hire = date(2014, 1, 1) + timedelta(days=rng.randrange(span))
            if worker_type != "Employee":
                hire = start - timedelta(days=rng.randrange(60, 900))
        p = Person(pid=pid, first=first, last=last, email=email, username=handle, worker_type=worker_type,
                   bu=bu, title=title, hire=hire, role=role, supplier=supplier.sid if supplier else None)
        people.append(p)
        return p

    ceo = make("Employee", "Finance", "Chief Executive Officer", "ceo")
    heads: dict[str, Person] = {}
    head_titles = {"R&D": "Head of R&D", "Quality": "Head of Quality and Regulatory Affairs",
                   "Manufacturing": "Head of Manufacturing", "IT": "Head of IT", "Finance": "Chief Financial Officer",
                   "Sales": "Head of Sales"}
    for bu in BUS:
        heads[bu] = make("Employee", bu, head_titles[bu], "head")
        heads[bu].manager = ceo
    admins = [make("Employee", "IT", t, "admin") for t in ("IAM Engineer", "Cloud Engineer", "Systems Administrator")]
    desk = [make("Employee", "IT", "IT Service Desk Analyst", "desk") for _ in range(2)]
    security = make("Employee", "IT", "IT Security Lead", "security")
    hr = [make("Employee", "Finance", "HR Business Partner", "hr") for _ in range(2)]
    for p in [*admins, *desk, security]:
        p.manager = heads["IT"]
    for p in hr:
        p.manager = heads["Finance"]

    # ordinary staff: employees and contractors spread over the business units, with team leads
    n_staff = n_emp - len(people) + n_con
    bus = rng.choices(BUS, weights=BU_WEIGHTS, k=n_staff)
    leads: dict[str, list[Person]] = {bu: [] for bu in BUS}
    staff: list[Person] = []
    n_leads = {bu: max(1, math.ceil(bus.count(bu) / 9) - 1) for bu in BUS}
    contractor_slots = set(rng.sample(range(n_staff), n_con))
    for i, bu in enumerate(bus):
        wt = "Contractor" if i in contractor_slots else "Employee"
        if wt == "Employee" and len(leads[bu]) < n_leads[bu]:
            p = make(wt, bu, f"Team Lead {bu}", "lead")
            p.manager = heads[bu]
            leads[bu].append(p)
            continue
        p = make(wt, bu, rng.choice(TITLES[bu]))
        staff.append(p)
    for p in staff:
        p.manager = rng.choice(leads[p.bu]) if leads[p.bu] and rng.random() < 0.85 else heads[p.bu]
    for bu in BUS:
        for p in [*leads[bu], *(s for s in staff if s.bu == bu)]:
            if bu == "R&D":
                p.team = rng.choice(RND_TEAMS)

    # suppliers and their staff
    suppliers: list[Supplier] = []
    mid = add_months(start, max(1, (end.year * 12 + end.month - start.year * 12 - start.month) // 2))
    ending = random_workday(rng, mid - timedelta(days=10), mid + timedelta(days=10))
    ending = min(ending, end - timedelta(days=21))
    for sid, sname, scope, bu, dom in SUPPLIERS:
        cend = ending if sid == ENDING_SUPPLIER else add_months(end, rng.randrange(6, 24))
        suppliers.append(Supplier(sid=sid, name=sname, scope=scope, sponsor=heads[bu],
                                  contract_start=date(start.year - rng.randrange(1, 4), rng.randrange(1, 13), 1),
                                  contract_end=cend, qualification="Qualified",
                                  next_review=add_months(start, rng.randrange(2, 12)), domain=dom))
    n_end = max(6, n_sup // 3)
    per = [(n_sup - n_end) // 2, n_sup - n_end - (n_sup - n_end) // 2, n_end]
    for sup, k in zip(suppliers, per, strict=True):
        bu = next(s[3] for s in SUPPLIERS if s[0] == sup.sid)
        for _ in range(k):
            p = make("Supplier", bu, {"SUP-001": "Validation Consultant", "SUP-002": "Cloud Operations Engineer",
                                      "SUP-003": "Firmware Developer"}[sup.sid], supplier=sup)
            p.manager = sup.sponsor
            if sup.sid == "SUP-003":
                p.team = "firmware"

    company = Company(people=people, by_pid={p.pid: p for p in people}, suppliers=suppliers, cat=cat, heads=heads,
                      ceo=ceo, admins=admins, desk=desk, security=security, hr=hr, start=start, end=end)
    _assign_systems(rng, company, leads)
    _lifecycle(rng, company, leads)
    _identities(rng, company)
    return company


def _assign_systems(rng: random.Random, c: Company, leads: dict[str, list[Person]]) -> None:
    aws_share = {"R&D": 0.5, "Quality": 0.12, "Manufacturing": 0.15, "IT": 1.0, "Finance": 0.12, "Sales": 0.0}
    gh_share = {"R&D": 0.85, "Quality": 0.15, "Manufacturing": 0.0, "IT": 0.5, "Finance": 0.0, "Sales": 0.0}
    for p in c.people:
        p.systems = ["okta"]
        if p.supplier:
            base = SUPPLIER_BASE[p.supplier]
            p.systems += [s for s in ("aws", "github") if s in base]
        elif p.role in ("admin", "security") or (p.role == "head" and p.bu in ("IT", "R&D")):
            p.systems += ["aws", "github"]
        elif p.role in ("ceo", "hr", "desk"):
            pass
        else:
            if rng.random() < aws_share[p.bu]:
                p.systems.append("aws")
            if rng.random() < gh_share[p.bu]:
                p.systems.append("github")
        p.aws_dev = "aws" in p.systems and (p.bu in ("R&D", "IT") or p.supplier == "SUP-002") and rng.random() < 0.6


def _lifecycle(rng: random.Random, c: Company, leads: dict[str, list[Person]]) -> None:
    start, end = c.start, c.end
    ordinary = [p for p in c.people if p.role == "staff" and not p.supplier]
    rng.shuffle(ordinary)
    n = len(ordinary)
    n_join, n_leave, n_move, n_away = round(0.14 * n), round(0.14 * n), max(2, round(0.05 * n)), max(2, round(0.03 * n))
    rest = list(ordinary)

    def take(k: int) -> list[Person]:
        """``k`` people, at least two of them with AWS (one holding a key) and two with GitHub when the
        company has them, so every kind of lifecycle event shows up even in a small company."""
        out: list[Person] = []
        for want in (lambda p: p.aws_dev, lambda p: "aws" in p.systems, lambda p: "aws" in p.systems,
                     lambda p: "github" in p.systems, lambda p: "github" in p.systems):
            if len(out) >= k:
                break
            hit = next((p for p in rest if want(p) and p not in out), None)
            if hit is not None:
                out.append(hit)
        out += [p for p in rest if p not in out][:k - len(out)]
        for p in out:
            rest.remove(p)
        return out

    joiners = take(n_join)
    leavers = take(n_leave)
    movers = rest[:n_move]
    away = rest[n_move:n_move + n_away]
    for p in joiners:
        p.hire = random_workday(rng, start + timedelta(days=14), end - timedelta(days=14))
    # a few joiners leave again within the period
    for p in joiners[: max(1, n_join // 10)]:
        if (end - p.hire).days > 60:
            p.term = random_workday(rng, p.hire + timedelta(days=40), end - timedelta(days=5))
    for p in leavers:
        p.term = random_workday(rng, start + timedelta(days=5), end - timedelta(days=5))
    for p in movers:
        on = random_workday(rng, start + timedelta(days=20), end - timedelta(days=20))
        new_bu = rng.choice([b for b in BUS if b != p.bu])
        new_mgr = rng.choice(leads[new_bu]) if leads[new_bu] else c.heads[new_bu]
        new_team = rng.choice(RND_TEAMS) if new_bu == "R&D" else None
        p.transfer = Transfer(on=on, old_bu=p.bu, new_bu=new_bu, old_title=p.title, new_title=rng.choice(TITLES[new_bu]),
                              old_manager=p.manager, new_manager=new_mgr, old_team=p.team, new_team=new_team)
        p.bu, p.title, p.manager, p.team = new_bu, p.transfer.new_title, new_mgr, new_team
    for p in away:
        lo = random_workday(rng, start + timedelta(days=10), max(start + timedelta(days=11), end - timedelta(days=50)))
        p.leave = (lo, min(end - timedelta(days=3), lo + timedelta(days=rng.randrange(21, 45))))
    ending = next(s for s in c.suppliers if s.sid == ENDING_SUPPLIER)
    for p in c.people:
        if p.supplier == ENDING_SUPPLIER:
            p.term = ending.contract_end


def _identities(rng: random.Random, c: Company) -> None:
    gh_ids: set[int] = set()
    for p in c.people:
        p.okta_id = okta_id(rng, "00u")
        p.okta_login = p.email
        p.okta_display = p.name
        p.snow_email = p.email
        if "aws" in p.systems:
            p.aws_name = p.email
            p.aws_uid = aws_id(rng, "AIDA")
        if "github" in p.systems:
            gid = rng.randrange(1_000_000, 190_000_000)
            while gid in gh_ids:
                gid = rng.randrange(1_000_000, 190_000_000)
            gh_ids.add(gid)
            p.gh_id = gid
        p.ip_office = rng.choice(OFFICE_IPS) if not p.supplier else public_ip(rng)
        p.ip_home = public_ip(rng)
        p.ua = rng.choice(BROWSERS)
    # data-quality realities: addresses typed with capitals in some systems
    for p in c.people:
        r = rng.random()
        if r < 0.06:
            p.okta_login = case_variant(p.email)
        elif r < 0.12:
            p.snow_email = case_variant(p.email)
        elif r < 0.18 and p.aws_name:
            p.aws_name = case_variant(p.email)
