"""The business `make bench-search` searches: 100,000 clients with varied Ghanaian
and accented names, mobile numbers written in mixed formats, e-mail addresses and
five categories, made the same on every run (one seed), as an import's xlsx; and
the fixed set of 20 searches, some of them built from rows of the book."""

from __future__ import annotations

import io
import random
import unicodedata

import xlsxwriter

from tests.support.workbooks import HEADER

SEED = 14
CATEGORIES = ("Wholesale", "Retail", "Market", "Online", "Export")
FIRST = (
    "Kwame Kwabena Kofi Kojo Yaw Kwaku Kwasi Kwadwo Ama Akua Abena Adjoa Afua Yaa "
    "Akosua Efua Esi Ekua Araba Nana Kwesi Fiifi Selasi Elikem Dzifa Mawuli Edem "
    "Naa Nii Dede Korkor Adoma Serwaa José Noël Zoë Chloé Hélène François Adélaïde "
    "Agnès Jérôme Amélie Théo Inès Léa Raphaël Loïc Éloïse Gaëlle Désirée"
).split()
LAST = (
    "Mensah Owusu Boateng Asante Osei Agyeman Appiah Ofori Darko Amoah Acheampong "
    "Quaye Tetteh Quartey Lamptey Addo Ansah Nkrumah Danquah Sarpong Frimpong Gyamfi "
    "Ampofo Adjei Bonsu Opoku Kyei Antwi Baffour Yeboah Kuffour Aidoo Essien Annan "
    "Agbeko Dzamesi Kpodo Abotsi Ahiable Béhanzin Kérékou Nérée Guézo Akakpo Sémévo"
).split()
TRADES = (
    "", "", "", "Enterprise", "Trading", "Ventures", "Chop Bar", "Provisions",
    "Pharmacy", "Cosmetics", "Hardware", "Boutique", "Électronique", "Café & Bar",
    "Pâtisserie", "Motors", "Agro Ltd", "Fashion Home",
)  # fmt: skip
CITIES = ("Accra", "Kumasi", "Tamale", "Takoradi", "Cape Coast", "Ho", "Koforidua")
MOBILE = ("020", "024", "026", "027", "050", "054", "055", "057", "059")
MAIL = ("gmail.com", "yahoo.com", "outlook.com", "mail.com.gh", "ghana.com")


def ascii_of(text: str) -> str:
    """`text` without accents or spaces, lower case: how people type e-mails."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and c.isascii()).lower()


def phone(random_: random.Random) -> str:
    """A Ghanaian mobile number in one of the ways people write them."""
    prefix, rest = random_.choice(MOBILE), f"{random_.randrange(10**7):07d}"
    national = f"{prefix[1:]}{rest}"  # 9 digits, without the trunk zero
    return random_.choice(
        (
            f"{prefix}{rest}",
            f"{prefix} {rest[:3]} {rest[3:]}",
            f"+233 {national[:2]} {national[2:5]} {national[5:]}",
            f"+233{national}",
            f"233-{national[:2]}-{national[2:5]}-{national[5:]}",
            f"({prefix}) {rest[:3]} {rest[3:]}",
        )
    )


def rows(count: int) -> list[list[object]]:
    """The sheet's rows, header first: Name, Phone Number, Email-Address, Address,
    Upaid Amount, Category."""
    random_ = random.Random(SEED)
    sheet: list[list[object]] = [[*HEADER, "Category"]]
    for n in range(count):
        first, last = random_.choice(FIRST), random_.choice(LAST)
        trade = random_.choice(TRADES)
        name = f"{first} {last} {trade}".strip()
        mail = f"{ascii_of(first)}.{ascii_of(last)}{n % 997}@{random_.choice(MAIL)}"
        amount = round(random_.uniform(0, 20_000), 2)
        city, category = random_.choice(CITIES), random_.choice(CATEGORIES)
        sheet.append([name, phone(random_), mail, city, amount, category])
    return sheet


def workbook(sheet: list[list[object]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    page = book.add_worksheet()
    for number, row in enumerate(sheet):
        page.write_row(number, 0, row)
    book.close()
    return buffer.getvalue()


def searches(
    sheet: list[list[object]], categories: dict[str, int]
) -> list[dict[str, str]]:
    """The 20 searches (query parameters besides per_page): names, accent-less forms
    of accented names, substrings, phone numbers written another way than stored,
    e-mails, and some with category_id. Phones and e-mails are taken from rows of the
    sheet, so each finds at least its row."""
    stored = [str(row[1]) for row in sheet[1:]]
    spaced = next(p for p in stored if len(p) == 12 and p[3] == " ")
    plus = next(p for p in stored if p.startswith("+233 "))
    mail = str(sheet[4242][2])
    market = str(categories["Market"])
    retail = str(categories["Retail"])
    digits = "".join(c for c in spaced if c.isdigit())
    return [
        {"search": "Kwame Mensah"},
        {"search": "mensah"},
        {"search": "ADJOA"},
        {"search": "adelaide"},
        {"search": "jose"},
        {"search": "helene quartey"},
        {"search": "electronique"},
        {"search": "ensa"},
        {"search": "patiss"},
        {"search": "qu"},
        {"search": f"+233{digits[1:]}"},
        {"search": "0" + "".join(c for c in plus[5:] if c.isdigit())},
        {"search": f"{digits[3:6]} {digits[6:8]}"},
        {"search": digits[1:]},
        {"search": mail},
        {"search": "@yahoo.com"},
        {"search": mail.split("@")[0][:8]},
        {"search": "kofi", "category_id": market},
        {"search": "boateng enterprise", "category_id": retail},
        {"search": "024", "category_id": market},
    ]
