"""CSV import: reading the file (crm.csv_import) and the services that check, start and run it."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from crm import csv_import
from crm.csv_import import (
    ImportFileError,
    JobFact,
    JobFacts,
    PipelineFact,
    StaffFact,
    check_rows,
    guess_mapping,
    parse_csv,
)
from crm.errors import DomainError
from crm.models import Contact, Customer, ImportRun, Job, Message, Pipeline
from crm.services import csv_import as import_services
from crm.services.csv_import import (
    STALLED_AFTER,
    import_create,
    import_restart,
    import_run,
    import_start,
    import_validate,
)
from crm.services.jobs import job_create
from crm.tasks import run_import

HEADER = (
    "Customer name,Customer kind,Address,Contact name,Email,Phone,Language,Preferred channel,"
    "SMS consent,SMS consent source,Time zone"
)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode(encoding)


def check(data: bytes) -> csv_import.CheckedRows:
    parsed = parse_csv(data)
    return check_rows(parsed.rows, mapping=guess_mapping(parsed.headers), headers=parsed.headers, now=NOW)


def messages_by_row(checked: csv_import.CheckedRows) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.message) for e in checked.errors]


GOOD = (
    "Dupont household,household,1 rue des Lilas,Marie Dupont,marie@example.com,,fr,email,no,,Europe/Paris",
    "Dupont household,,,Jean Dupont,,+33 6 98 76 54 32,fr,sms,yes,signed order form,",
    "Acme Telecom,company,,Sam Carter,sam@acme.example,,en,,,,America/Toronto",
)

JOB_HEADER = "Customer name,Contact name,Email,Job,Pipeline,Owner,Start date,Job reference"
# Two customers, three contacts, two jobs: the Duponts' with both of them, Acme's with its reference.
JOB_ROWS = (
    "Dupont household,Marie Dupont,marie@example.com,Heat pump installation,Installation,,2026-03-02,",
    "Dupont household,Jean Dupont,jean@example.com,Heat pump installation,Installation,,,",
    "Acme Telecom,Sam Carter,sam@acme.example,Fibre repair,Repair,charlie,02/03/2026,J-2026-0042",
)


def job_csv(*lines: str) -> bytes:
    return csv_bytes(*lines, header=JOB_HEADER)


# --- Reading the file ---------------------------------------------------------------------------


class TestParse:
    def test_it_reads_utf8_with_and_without_bom(self):
        plain = parse_csv(csv_bytes("Café Dupont,,,Zoé,zoe@example.com,,,,,,"))
        with_bom = parse_csv(b"\xef\xbb\xbf" + csv_bytes("Café Dupont,,,Zoé,zoe@example.com,,,,,,"))
        assert plain.encoding == "utf-8"
        assert with_bom.encoding == "utf-8-sig"
        assert with_bom.headers[0] == "Customer name"  # no BOM glued to the first header
        assert plain.rows == with_bom.rows == [(2, ["Café Dupont", "", "", "Zoé", "zoe@example.com", *[""] * 6])]

    def test_it_falls_back_to_windows_1252(self):
        parsed = parse_csv(
            csv_bytes("Société Générale,company,,Hélène Noël,helene@example.com,,,,,,", encoding="cp1252")
        )
        assert parsed.encoding == "cp1252"
        assert parsed.rows[0][1][0] == "Société Générale"
        assert parsed.rows[0][1][3] == "Hélène Noël"

    def test_it_reads_utf16_from_excel_unicode_text(self):
        data = "Client\tNom du contact\tCourriel\r\nMartin\tLucie\tlucie@example.com\r\n".encode("utf-16")
        parsed = parse_csv(data)
        assert parsed.delimiter == "\t"
        assert parsed.rows == [(2, ["Martin", "Lucie", "lucie@example.com"])]

    def test_it_sniffs_semicolons_from_french_excel(self):
        data = "Nom du client;Nom du contact;Courriel;Adresse\r\nDupont;Marie;marie@example.com;1, rue des Lilas\r\n"
        parsed = parse_csv(data.encode("cp1252"))
        assert parsed.delimiter == ";"
        assert parsed.rows[0][1] == ["Dupont", "Marie", "marie@example.com", "1, rue des Lilas"]

    def test_it_follows_excel_sep_line(self):
        parsed = parse_csv(b"sep=;\r\nClient;Contact;Email\r\nA, B;C;c@example.com\r\n")
        assert parsed.delimiter == ";"
        assert parsed.headers == ["Client", "Contact", "Email"]

    def test_it_keeps_spreadsheet_row_numbers_and_skips_blank_rows(self):
        parsed = parse_csv(
            b'Customer,Contact,Email\r\n\r\nA,B,b@example.com\r\n,,\r\n"C","multi\nline",c@example.com\r\nE,F,f@x.io\r\n'
        )
        assert [number for number, _cells in parsed.rows] == [3, 5, 6]

    def test_it_drops_a_nul_from_a_cell_as_no_spreadsheet_shows_one(self):
        # A NUL is never typed and never seen, so the person could not find it to fix it: the cell
        # is read without it, in the header row too (crm.csv_import.parse_csv).
        line = "Dupont\x00 household,,,Marie\x00\x00 Dupont,marie@example.com\x00,,,,,,"
        for data in (
            b"\xef\xbb\xbf" + csv_bytes(line, header=HEADER.replace("Email", "E\x00mail")),
            ("\r\n".join([HEADER.replace("Email", "E\x00mail"), line]) + "\r\n").encode("utf-16"),
        ):
            parsed = parse_csv(data)
            assert parsed.headers[4] == "Email"
            assert parsed.rows[0][1][:5] == ["Dupont household", "", "", "Marie Dupont", "marie@example.com"]

    def test_it_refuses_empty_files_and_files_without_rows(self):
        with pytest.raises(ImportFileError, match="empty"):
            parse_csv(b"  \r\n")
        with pytest.raises(ImportFileError, match="no rows"):
            parse_csv(csv_bytes())

    def test_it_refuses_an_excel_workbook_with_a_hint(self):
        with pytest.raises(ImportFileError, match="CSV UTF-8"):
            parse_csv(b"PK\x03\x04\x14\x00\x06\x00rest of a zip")

    def test_it_refuses_too_many_rows(self):
        with pytest.raises(ImportFileError, match="more than 2 rows"):
            parse_csv(csv_bytes(*GOOD), max_rows=2)


class TestMapping:
    def test_it_recognises_english_and_french_headers_in_any_case(self):
        headers = [
            "NOM DU CLIENT",
            "Type",
            "adresse",
            "Nom du contact",
            "E-mail",
            "Téléphone",
            "Langue",
            "Canal préféré",
        ]
        headers += ["Consentement SMS", "Source du consentement SMS", "Fuseau horaire"]
        assert guess_mapping(headers) == {
            "customer_name": 0,
            "customer_kind": 1,
            "address": 2,
            "contact_name": 3,
            "email": 4,
            "phone": 5,
            "language": 6,
            "preferred_channel": 7,
            "sms_consent": 8,
            "sms_consent_source": 9,
            "time_zone": 10,
        }

    def test_it_takes_the_first_of_two_columns_with_the_same_meaning(self):
        assert guess_mapping(["Email", "Courriel", "Customer", "Contact"])["email"] == 0

    def test_missing_required_columns_are_named(self):
        missing = csv_import.missing_fields(guess_mapping(["Name", "Notes"]))
        assert [str(f.label) for f in missing] == ["Customer name", "Email or phone"]
        assert csv_import.missing_fields(guess_mapping(["Client", "Contact", "Phone"])) == []


# --- Checking rows ------------------------------------------------------------------------------


class TestCheckRows:
    def test_valid_rows_group_under_one_customer_per_name(self):
        checked = check(csv_bytes(*GOOD))
        assert checked.errors == []
        assert list(checked.customers) == ["Dupont household", "Acme Telecom"]
        dupont = checked.customers["Dupont household"]
        assert (dupont.kind, dupont.address) == ("household", "1 rue des Lilas")
        assert checked.customers["Acme Telecom"].kind == "company"
        jean = checked.contacts[1][1]
        assert (jean.preferred_channel, jean.sms_consent_at, jean.sms_consent_source) == (
            "sms",
            NOW,
            "signed order form",
        )
        sam = checked.contacts[2][1]
        assert (sam.language, sam.preferred_channel, sam.time_zone) == ("en", "email", "America/Toronto")

    def test_each_problem_is_reported_by_row_and_column(self):
        checked = check(
            csv_bytes(
                "Dupont,,,Marie,not-an-email,,fr,,,,",  # row 2
                "Dupont,,,Jean,,,fr,,,,",  # row 3: neither email nor phone
                "Dupont,,,Paul,,+33 6 12 34 56 78,fr,sms,no,,",  # row 4: SMS without consent
                "Dupont,,,Luc,,+33 6 12 34 56 78,fr,sms,yes,,",  # row 5: consent without a source
                "Dupont,,,Zoé,zoe@example.com,,de,,,,Mars/Olympus",  # row 6
                ",,,Anne,anne@example.com,,,,,,",  # row 7: no customer name
                "Dupont,shop,,Ali,ali@example.com,,,pigeon,maybe,,",  # row 8
                "Dupont,,,Eve,,+33 6 12 34 56 78,,email,,,",  # row 9: email preferred, no address
            )
        )
        assert messages_by_row(checked) == [
            (2, "Email", "Enter a valid email address."),
            (3, "Email", "A contact needs an email address or a phone number."),
            (4, "Preferred channel", "SMS can only be the preferred channel once the contact has consented."),
            (5, "SMS consent source", "Say how the SMS consent was given."),
            (6, "Language", "“de” is not one of: en, fr."),
            (6, "Time zone", "Mars/Olympus is not a known time zone."),
            (7, "Customer name", "This field cannot be blank."),
            (8, "Customer kind", "“shop” is not one of: household, company."),
            (8, "Preferred channel", "“pigeon” is not one of: email, sms, phone."),
            (8, "SMS consent", "“maybe” is neither yes nor no."),
            (9, "Email", "Email is the preferred channel, so an address is needed."),
        ]
        assert checked.invalid_rows == 8
        assert checked.valid_rows == 0

    def test_a_phone_that_is_not_a_valid_number_is_a_row_error(self):
        checked = check(
            csv_bytes(
                "Dupont,,,Paul,,call me maybe,fr,sms,yes,signed order form,",  # row 2
                "Dupont,,,Luc,luc@example.com,12345,fr,,,,",  # row 3: too short
                "Dupont,,,Zoé,,06.12.34.56.78,fr,,,,",  # row 4: fine
                "Dupont,,,Léa,lea@example.com,+999 1234,fr,,,,",  # row 5: no such country code
            )
        )
        message = (
            "Enter a valid phone number, e.g. 06 12 34 56 78 or +33 6 12 34 56 78. "
            "A number without a country code is read as a number in France."
        )
        assert messages_by_row(checked) == [(2, "Phone", message), (3, "Phone", message), (5, "Phone", message)]
        assert [contact.phone for _name, contact in checked.contacts] == ["+33612345678"]

    def test_numbers_in_any_format_are_stored_in_e164(self):
        checked = check(
            csv_bytes(
                "Dupont,,,Paul,,06 12 34 56 78,fr,,,,",
                "Dupont,,,Marie,,+33 6.98.76.54.32,fr,,,,",
                "Dupont,,,Jean,,0033 1 42 68 53 00,fr,,,,",
                "Tremblay,,,Luc,,+1 (514) 555-0142,fr,,,,",
                "Smith,,,John,,+44 7400 123456,en,,,,",
            )
        )
        assert checked.errors == []
        assert [contact.phone for _name, contact in checked.contacts] == [
            "+33612345678",
            "+33698765432",
            "+33142685300",
            "+15145550142",
            "+447400123456",
        ]

    def test_texts_to_a_landline_are_a_row_error(self):
        checked = check(
            csv_bytes(
                "Dupont,,,Paul,,01 42 68 53 00,fr,,yes,signed order form,",  # row 2: consent to a landline
                "Dupont,,,Marie,marie@example.com,01 42 68 53 01,fr,,,,",  # row 3: fine, called or emailed
                "Dupont,,,Zoé,,06 12 34 56 78,fr,sms,yes,signed order form,",  # row 4: a mobile, fine
            )
        )
        message = "01 42 68 53 00 cannot receive text messages: it is not a mobile number."
        assert messages_by_row(checked) == [(2, "SMS consent", message)]
        assert [contact.name for _name, contact in checked.contacts] == ["Marie", "Zoé"]

    def test_the_column_is_named_as_in_the_file(self):
        data = b"Client;Nom du contact;Courriel\r\nDupont;Marie;pas-un-courriel\r\n"
        assert messages_by_row(check(data)) == [(2, "Courriel", "Enter a valid email address.")]

    def test_french_values_are_understood(self):
        data = "Client;Type;Nom;Téléphone;Langue;Canal;Consentement SMS;Source du consentement\r\n"
        data += "Société X;Entreprise;Marie;+33 6 12 34 56 78;Français;Téléphone;Oui;bon de commande\r\n"
        checked = check(data.encode())
        assert checked.errors == []
        assert checked.customers["Société X"].kind == "company"
        contact = checked.contacts[0][1]
        assert (contact.language, contact.preferred_channel, contact.sms_consent_at) == ("fr", "phone", NOW)

    def test_without_a_channel_a_contact_with_a_phone_only_is_called(self):
        checked = check(csv_bytes("Martin,,,Lucie,,+33 5 56 00 00 00,,,,,"))
        assert checked.contacts[0][1].preferred_channel == "phone"

    def test_one_customer_has_one_kind_and_one_address(self):
        checked = check(
            csv_bytes(
                "Dupont,,,Marie,marie@example.com,,,,,,",
                "Dupont,company,1 rue A,Jean,jean@example.com,,,,,,",  # first to give them: kept
                "Dupont,household,1 rue A,Paul,paul@example.com,,,,,,",
                "Dupont,,2 rue B,Luc,luc@example.com,,,,,,",
            )
        )
        assert messages_by_row(checked) == [
            (4, "Customer kind", "Differs from row 3 for the same customer (“company”)."),
            (5, "Address", "Differs from row 3 for the same customer (“1 rue A”)."),
        ]
        assert (checked.customers["Dupont"].kind, checked.customers["Dupont"].address) == ("company", "1 rue A")

    def test_a_contact_twice_in_the_file_is_an_error(self):
        checked = check(csv_bytes("Dupont,,,Marie,marie@example.com,,,,,,", "Dupont,,,Marie,MARIE@example.com,,,,,,"))
        assert messages_by_row(checked) == [(3, "Contact name", "The same contact as row 2.")]

    def test_progress_is_reported_every_n_rows(self):
        parsed = parse_csv(csv_bytes(*[f"C{i},,,P{i},p{i}@example.com,,,,,," for i in range(7)]))
        seen: list[int] = []
        check_rows(
            parsed.rows,
            mapping=guess_mapping(parsed.headers),
            headers=parsed.headers,
            now=NOW,
            on_progress=seen.append,
            progress_every=3,
        )
        assert seen == [3, 6]

    def test_errors_csv_cannot_smuggle_a_formula(self):
        report = csv_import.errors_csv([{"row": 2, "column": "=HYPERLINK(1)", "message": "@SUM(A1)"}])
        assert report.splitlines()[1] == "2,'=HYPERLINK(1),'@SUM(A1)"

    def test_errors_csv_uses_the_files_delimiter(self):
        report = csv_import.errors_csv([{"row": 2, "column": "Email", "message": "Enter; a valid one."}], delimiter=";")
        assert report.splitlines() == ["Row;Column;Problem", '2;Email;"Enter; a valid one."']


# --- Job rows (no database: what the database knows is handed in) --------------------------------

INSTALLATION = PipelineFact(1, "Installation", True, True)
REPAIR = PipelineFact(2, "Repair", True, True)
BOB = StaffFact(10, "Bob Durand", True)
CHARLIE = StaffFact(11, "charlie", True)


def facts(**kwargs) -> JobFacts:
    values = {
        "pipelines": [
            INSTALLATION,
            REPAIR,
            PipelineFact(3, "Old boilers", False, True),
            PipelineFact(4, "Draft", True, False),
        ],
        "staff_by_username": {"bob": [BOB], "charlie": [CHARLIE], "gone": [StaffFact(12, "Gone Person", False)]},
        "staff_by_email": {"bob@example.com": [BOB], "team@example.com": [BOB, CHARLIE]},
        "default_owner": BOB,
        **kwargs,
    }
    return JobFacts(**values)


def check_jobs(*lines: str, job_facts: JobFacts | None = None) -> csv_import.CheckedRows:
    parsed = parse_csv(job_csv(*lines))
    return check_rows(
        parsed.rows,
        mapping=guess_mapping(parsed.headers),
        headers=parsed.headers,
        now=NOW,
        jobs=job_facts or facts(),
    )


def jobs_of(checked: csv_import.CheckedRows) -> list[tuple[str, str, str, str, list[str], bool]]:
    return [
        (job.customer_name, job.title, job.pipeline.name, job.reference, [c.name for c in job.contacts], job.existing)
        for job in checked.jobs
    ]


class TestJobRows:
    def test_it_recognises_the_job_columns_in_english_and_french(self):
        english = guess_mapping(JOB_HEADER.split(","))
        assert [english[key] for key in csv_import.JOB_FIELDS] == [3, 4, 5, 6, 7]
        french = ["Client", "Nom du contact", "Courriel", "Dossier", "Processus", "Responsable"]
        french += ["Date de début", "Référence du dossier"]
        assert [guess_mapping(french)[key] for key in csv_import.JOB_FIELDS] == [3, 4, 5, 6, 7]

    def test_a_contact_exports_job_title_is_not_read_as_a_job(self):
        # Outlook's and HubSpot's "Job Title" is the person's position: read as a job, every contact
        # of such a file would be welcomed to a job called "Sales manager".
        mapping = guess_mapping(["Customer", "Contact", "Email", "Job Title", "Title", "Titre"])
        assert not set(csv_import.JOB_FIELDS) & set(mapping)

    def test_rows_of_one_customer_and_one_job_make_one_job_with_their_contacts(self):
        checked = check_jobs(*JOB_ROWS)
        assert checked.errors == []
        assert jobs_of(checked) == [
            ("Dupont household", "Heat pump installation", "Installation", "", ["Marie Dupont", "Jean Dupont"], False),
            ("Acme Telecom", "Fibre repair", "Repair", "J-2026-0042", ["Sam Carter"], False),
        ]
        dupont, acme = checked.jobs
        assert (dupont.owner, dupont.start_date) == (BOB, date(2026, 3, 2))  # empty owner: the importer
        assert (acme.owner, acme.start_date) == (CHARLIE, date(2026, 3, 2))  # dd/mm/yyyy

    def test_a_row_without_a_job_title_has_no_job_and_its_job_cells_are_not_read(self):
        checked = check_jobs("Dupont,Marie,marie@example.com,,Nowhere,nobody,someday,J-1")
        assert (checked.errors, checked.jobs, checked.valid_rows) == ([], [], 1)

    def test_each_job_problem_is_reported_by_row_and_column(self):
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Plumbing,,,",  # row 2
            "Dupont,Jean,jean@example.com,Heat pump,Old boilers,,,",  # row 3
            "Dupont,Paul,paul@example.com,Heat pump,Draft,,,",  # row 4
            "Dupont,Luc,luc@example.com,Heat pump,,,,",  # row 5
            "Dupont,Zoé,zoe@example.com,Heat pump,Installation,nobody,,",  # row 6
            "Dupont,Ali,ali@example.com,Heat pump,Installation,gone,,",  # row 7
            "Dupont,Eve,eve@example.com,Heat pump,Installation,team@example.com,,",  # row 8
            "Dupont,Ann,ann@example.com,Heat pump,Installation,,03/31/2026,J-2026-42",  # row 9
            "Dupont,Bea,bea@example.com,Heat pump,Installation,,3026-01-01,",  # row 10
            f"Dupont,Cy,cy@example.com,{'x' * 201},Installation,,,",  # row 11
        )
        assert messages_by_row(checked) == [
            (2, "Pipeline", "“Plumbing” is not one of: Installation, Repair."),
            (3, "Pipeline", "The Old boilers pipeline is no longer in use."),
            (4, "Pipeline", "The Draft pipeline has no stages yet."),
            (5, "Pipeline", "Give the job's pipeline, one of: Installation, Repair."),
            (6, "Owner", "No staff member has the username or email “nobody”."),
            (7, "Owner", "Gone Person is not an active staff member and cannot be a job owner."),
            (8, "Owner", "Several people have the email “team@example.com”: give the username."),
            (9, "Start date", "“03/31/2026” is not a date: write it as 2026-03-31 or 31/03/2026."),
            (9, "Job reference", "A job reference looks like J-2026-0042, not “J-2026-42”."),
            (10, "Start date", checked.errors[9].message),
            (11, "Job", "Ensure this value has at most 200 characters (it has 201)."),
        ]
        assert checked.errors[9].message.startswith("Choose a date no later than")
        assert (checked.invalid_rows, checked.valid_rows, checked.jobs) == (10, 0, [])

    def test_a_pipeline_is_found_without_case_or_accents_and_an_owner_by_email(self):
        checked = check_jobs("Dupont,Marie,marie@example.com,Heat pump,INSTALLATION,Bob@Example.com,,j-2026-0007")
        assert checked.errors == []
        (job,) = checked.jobs
        assert (job.pipeline, job.owner, job.reference) == (INSTALLATION, BOB, "J-2026-0007")

    def test_without_the_importer_as_owner_an_empty_owner_is_an_error(self):
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Installation,,,", job_facts=facts(default_owner=None)
        )
        assert messages_by_row(checked) == [
            (2, "Owner", "Give the job's owner: the username or email of a staff member.")
        ]

    def test_one_job_has_one_pipeline_owner_and_start_date(self):
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Installation,,,J-2026-0001",
            "Dupont,Jean,jean@example.com,Boiler,Installation,,,J-2026-0001",  # same job, another title
            "Dupont,Paul,paul@example.com,Heat pump,Installation,charlie,2026-03-02,",
            "Dupont,Luc,luc@example.com,Heat pump,Installation,bob,2026-03-09,",  # the first to give them: kept
            "Acme,Sam,sam@acme.example,Fibre,Repair,,,J-2026-0001",  # the Duponts' reference
        )
        assert messages_by_row(checked) == [
            (3, "Job", "Differs from row 2 for the same job (“Heat pump”)."),
            (5, "Owner", "Differs from row 4 for the same job (“charlie”)."),
            (5, "Start date", "Differs from row 4 for the same job (“2026-03-02”)."),
            (6, "Job reference", "Row 2 gives this reference to Dupont."),
        ]
        (job,) = checked.jobs
        assert (job.reference, job.owner, job.start_date) == ("J-2026-0001", CHARLIE, date(2026, 3, 2))
        assert [c.name for c in job.contacts] == ["Marie", "Paul"]

    def test_a_row_without_a_reference_joins_the_files_job_with_one_wherever_it_is(self):
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Installation,,,",
            "Dupont,Jean,jean@example.com,Heat pump,Installation,,,J-2026-0005",
        )
        assert jobs_of(checked) == [("Dupont", "Heat pump", "Installation", "J-2026-0005", ["Marie", "Jean"], False)]

    def test_an_existing_job_is_found_by_reference_else_by_pipeline_and_title_among_open_jobs(self):
        dupont_job = JobFact(7, "J-2025-0100", 70, "Dupont")
        acme_job = JobFact(8, "J-2025-0200", 80, "Acme")
        known = facts(
            customers={"Dupont": 70, "Acme": 80},
            jobs_by_reference={"J-2025-0100": dupont_job, "J-2025-0200": acme_job},
            open_jobs={(70, INSTALLATION.id, "Heat pump"): ["J-2025-0100"]},
        )
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Installation,,,",  # the open job, by its title
            "Dupont,Jean,jean@example.com,Heat pump,Repair,,,",  # another pipeline: a new job
            "Acme,Sam,sam@acme.example,Fibre,Repair,,,J-2025-0200",  # by its reference
            "Dupont,Paul,paul@example.com,Boiler,Repair,,,J-2025-0200",  # Acme's reference
            job_facts=known,
        )
        assert messages_by_row(checked) == [(5, "Job reference", "J-2025-0200 is the reference of a job of Acme.")]
        assert jobs_of(checked) == [
            ("Dupont", "Heat pump", "Installation", "J-2025-0100", ["Marie"], True),
            ("Dupont", "Heat pump", "Repair", "", ["Jean"], False),
            ("Acme", "Fibre", "Repair", "J-2025-0200", ["Sam"], True),
        ]
        assert [job.title for job in checked.jobs_to_open] == ["Heat pump"]

    def test_a_title_that_names_several_jobs_needs_the_reference(self):
        known = facts(
            customers={"Dupont": 70},
            jobs_by_reference={"J-2025-0100": JobFact(7, "J-2025-0100", 70, "Dupont")},
            open_jobs={(70, INSTALLATION.id, "Heat pump"): ["J-2025-0100"]},
        )
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Installation,,,J-2026-0001",
            "Dupont,Jean,jean@example.com,Heat pump,Installation,,,",
            job_facts=known,
        )
        assert messages_by_row(checked) == [
            (
                3,
                "Job",
                "Several jobs of this customer are called “Heat pump” in the Installation pipeline "
                "(J-2025-0100, J-2026-0001): give the job reference.",
            )
        ]

    def test_the_same_contact_for_two_jobs_is_still_the_same_contact_twice(self):
        checked = check_jobs(
            "Dupont,Marie,marie@example.com,Heat pump,Installation,,,",
            "Dupont,Marie,marie@example.com,Boiler,Repair,,,",
        )
        assert messages_by_row(checked) == [(3, "Contact name", "The same contact as row 2.")]


# --- Services -----------------------------------------------------------------------------------


def run_started(run: ImportRun, callbacks, **kwargs) -> ImportRun:
    with callbacks(execute=True):
        import_start(run=run, **kwargs)
    run.refresh_from_db()
    return run


@pytest.mark.django_db
class TestServices:
    def test_a_recognised_file_is_checked_at_once(self, bob):
        run = import_create(file_name="clients.csv", data=csv_bytes(*GOOD), actor=bob)
        assert run.status == ImportRun.Status.VALIDATED
        assert (run.total_rows, run.valid_rows, run.invalid_rows, run.error_count) == (3, 3, 0, 0)
        assert (run.customers_to_create, run.customers_to_join, run.contacts_to_create) == (2, 0, 3)
        assert run.created_by == bob
        assert not Customer.objects.exists()  # checking writes nothing but the run

    def test_unrecognised_columns_wait_for_a_mapping(self, bob):
        run = import_create(file_name="x.csv", data=b"Who,Mail\r\nDupont / Marie,marie@example.com\r\n", actor=bob)
        assert run.status == ImportRun.Status.UPLOADED
        assert run.mapping == {"email": 1}
        with pytest.raises(DomainError, match="Customer name, Contact name"):
            import_validate(run=run, mapping={"email": 1})
        run = import_validate(run=run, mapping={"customer_name": 0, "contact_name": 0, "email": 1})
        assert (run.status, run.valid_rows) == (ImportRun.Status.VALIDATED, 1)

    def test_a_file_with_nul_in_its_cells_is_stored_and_imported_without_it(
        self, bob, django_capture_on_commit_callbacks
    ):
        # PostgreSQL refuses a NUL in text and in JSON: kept, the run itself could not be stored.
        data = b"\xef\xbb\xbf" + csv_bytes(*GOOD).replace(b"Marie Dupont", b"Marie\x00 Dupont")
        run = import_create(file_name="clients.csv", data=data, actor=bob)
        assert (run.status, run.valid_rows, run.invalid_rows) == (ImportRun.Status.VALIDATED, 3, 0)

        run = run_started(run, django_capture_on_commit_callbacks)
        assert run.status == ImportRun.Status.DONE
        assert Contact.objects.filter(name="Marie Dupont").exists()

    def test_an_unreadable_file_is_a_domain_error(self, bob):
        with pytest.raises(DomainError, match="empty"):
            import_create(file_name="x.csv", data=b"", actor=bob)
        with pytest.raises(DomainError, match="limit is 5 MB"):
            import_create(file_name="x.csv", data=b"a" * (csv_import.MAX_FILE_BYTES + 1), actor=bob)
        assert not ImportRun.objects.exists()

    def test_it_imports_every_row_of_a_good_file(self, bob, django_capture_on_commit_callbacks):
        run = run_started(
            import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob), django_capture_on_commit_callbacks
        )
        assert run.status == ImportRun.Status.DONE
        assert (run.processed_rows, run.customers_created, run.contacts_created) == (3, 2, 3)
        assert run.rows == []  # the data now lives in customers and contacts
        dupont = Customer.objects.get(name="Dupont household")
        assert (dupont.kind, dupont.address) == ("household", "1 rue des Lilas")
        assert sorted(dupont.contacts.values_list("name", flat=True)) == ["Jean Dupont", "Marie Dupont"]
        jean = Contact.objects.get(name="Jean Dupont")
        assert jean.sms_consent_at is not None and jean.sms_consent_source == "signed order form"
        assert run.finished_at is not None

    def test_a_bad_file_imports_nothing_without_confirmation(self, bob, django_capture_on_commit_callbacks):
        run = import_create(file_name="x.csv", data=csv_bytes(*GOOD, "Dupont household,,,Bad,nope,,,,,,"), actor=bob)
        assert (run.valid_rows, run.invalid_rows) == (3, 1)
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(DomainError, match="confirm"):
            import_start(run=run)
        assert callbacks == []
        run.refresh_from_db()
        assert run.status == ImportRun.Status.VALIDATED
        assert not Customer.objects.exists()
        assert not Contact.objects.exists()

    def test_a_file_without_valid_rows_cannot_start(self, bob):
        run = import_create(file_name="x.csv", data=csv_bytes("Dupont,,,Bad,nope,,,,,,"), actor=bob)
        with pytest.raises(DomainError, match="No row"):
            import_start(run=run, valid_only=True)

    def test_confirmed_valid_only_imports_exactly_the_valid_rows(self, bob, django_capture_on_commit_callbacks):
        data = csv_bytes(GOOD[0], "Dupont household,,,Bad,nope,,,,,,", GOOD[2], ",,,Nobody,n@example.com,,,,,,")
        run = import_create(file_name="x.csv", data=data, actor=bob)
        run = run_started(run, django_capture_on_commit_callbacks, valid_only=True)
        assert run.status == ImportRun.Status.DONE
        assert run.valid_only
        assert sorted(Contact.objects.values_list("name", flat=True)) == ["Marie Dupont", "Sam Carter"]
        assert sorted(Customer.objects.values_list("name", flat=True)) == ["Acme Telecom", "Dupont household"]
        assert (run.contacts_created, run.invalid_rows) == (2, 2)

    def test_starting_twice_imports_once(self, bob, django_capture_on_commit_callbacks):
        run = import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob)
        with django_capture_on_commit_callbacks(execute=False) as first:
            import_start(run=run)
        with django_capture_on_commit_callbacks(execute=False) as second:
            again = import_start(run=run)  # the double click
        assert len(first) == 1 and second == []
        assert again.status == ImportRun.Status.RUNNING
        first[0]()
        assert ImportRun.objects.get(pk=run.pk).status == ImportRun.Status.DONE
        assert run_import(run.pk) == "not running"  # a duplicated task does nothing
        assert import_run(run_id=run.pk) is None
        assert Contact.objects.count() == 3
        assert Customer.objects.count() == 2
        assert import_start(run=run).status == ImportRun.Status.DONE

    def test_an_existing_customer_is_matched_by_exact_name(self, bob, django_capture_on_commit_callbacks):
        dupont = Customer.objects.create(name="Dupont household", kind=Customer.Kind.COMPANY, address="Old address")
        Customer.objects.create(name="dupont household")  # not the same name
        Contact.objects.create(customer=dupont, name="Marie Dupont", email="marie@example.com", language="fr")
        run = import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob)
        assert (run.customers_to_create, run.customers_to_join, run.contacts_to_create) == (1, 1, 2)
        run = run_started(run, django_capture_on_commit_callbacks)
        assert (run.customers_created, run.customers_joined, run.contacts_created, run.contacts_existing) == (
            1,
            1,
            2,
            1,
        )
        assert Customer.objects.filter(name="Dupont household").count() == 1
        dupont.refresh_from_db()
        assert (dupont.kind, dupont.address) == ("company", "Old address")  # an existing customer is not changed
        assert sorted(dupont.contacts.values_list("name", flat=True)) == ["Jean Dupont", "Marie Dupont"]

    def test_importing_the_same_file_twice_adds_nobody(self, bob, django_capture_on_commit_callbacks):
        for _round in range(2):
            run = run_started(
                import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob), django_capture_on_commit_callbacks
            )
        assert (run.customers_created, run.contacts_created, run.contacts_existing) == (0, 0, 3)
        assert Contact.objects.count() == 3

    def test_a_number_written_another_way_is_the_same_contact_on_a_second_import(
        self, bob, django_capture_on_commit_callbacks
    ):
        run = run_started(
            import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob), django_capture_on_commit_callbacks
        )
        jean = Contact.objects.get(name="Jean Dupont")
        assert jean.phone == "+33698765432"  # typed "+33 6 98 76 54 32"
        written_otherwise = [line.replace("+33 6 98 76 54 32", "06.98.76.54.32") for line in GOOD]
        run = run_started(
            import_create(file_name="x.csv", data=csv_bytes(*written_otherwise), actor=bob),
            django_capture_on_commit_callbacks,
        )
        assert (run.contacts_created, run.contacts_existing) == (0, 3)
        assert Contact.objects.count() == 3

    def test_a_failure_writes_nothing_and_says_why(self, bob, django_capture_on_commit_callbacks, monkeypatch):
        run = import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob)

        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(Contact.objects, "bulk_create", broken)
        run = run_started(run, django_capture_on_commit_callbacks)
        assert run.status == ImportRun.Status.FAILED
        assert run.failure == "An unexpected error stopped the import."
        assert run.finished_at is not None
        assert not Customer.objects.exists()  # the customers written before the failure are rolled back

    def test_a_stalled_import_can_be_started_again(self, bob, django_capture_on_commit_callbacks):
        run = import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob)
        with django_capture_on_commit_callbacks(execute=False) as lost:
            import_start(run=run)  # the worker that took this task was restarted: nothing happened
        assert len(lost) == 1
        with django_capture_on_commit_callbacks(execute=True) as too_soon:
            import_restart(run=run)
        assert too_soon == []  # still within the time a live import moves in
        ImportRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - STALLED_AFTER - STALLED_AFTER)
        with django_capture_on_commit_callbacks(execute=True) as again:
            import_restart(run=run)
        assert len(again) == 1
        run.refresh_from_db()
        assert (run.status, run.contacts_created) == (ImportRun.Status.DONE, 3)
        lost[0]()  # the first task turns up after all: nothing twice
        assert Contact.objects.count() == 3
        with django_capture_on_commit_callbacks(execute=True) as finished:
            import_restart(run=run)
        assert finished == []

    def test_the_mapping_cannot_change_once_started(self, bob, django_capture_on_commit_callbacks):
        run = run_started(
            import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob), django_capture_on_commit_callbacks
        )
        with pytest.raises(DomainError, match="already started"):
            import_validate(run=run, mapping=run.mapping)

    def test_ten_thousand_rows_well_under_a_minute(self, bob, django_capture_on_commit_callbacks):
        lines = [
            f"Customer {i // 2},{'company' if i % 4 else 'household'},{i // 2} Main Street,Person {i},"
            f"person{i}@example.com,+33 6 12 {i:06d},{'fr' if i % 2 else 'en'},,{'yes' if i % 3 == 0 else 'no'},"
            f"{'order form' if i % 3 == 0 else ''},Europe/Paris"
            for i in range(10_000)
        ]
        # Two contacts per customer; the kind differs inside a pair every other time (i % 4 == 0 vs 1).
        data = csv_bytes(*lines)
        started = time.perf_counter()
        run = import_create(file_name="big.csv", data=data, actor=bob)
        checked_at = time.perf_counter()
        run = run_started(run, django_capture_on_commit_callbacks, valid_only=True)
        finished = time.perf_counter()
        assert run.status == ImportRun.Status.DONE, run.failure
        assert run.contacts_created == run.valid_rows == Contact.objects.count()
        assert run.contacts_created + run.invalid_rows == 10_000
        elapsed = finished - started
        print(
            f"\n10,000 rows: upload+check {checked_at - started:.2f} s, import {finished - checked_at:.2f} s, "
            f"total {elapsed:.2f} s ({10_000 / elapsed:,.0f} rows/s)"
        )
        assert elapsed < 15


def planned(run: ImportRun) -> tuple[int, int, int]:
    """What the check stored: jobs to open, welcomes to send, jobs already there."""
    return (run.jobs_to_create, run.welcomes_to_send, run.jobs_to_find)


def done(run: ImportRun) -> tuple[int, int, int]:
    """What the import stored as it ended: jobs opened, welcomes queued, jobs already there."""
    return (run.jobs_created, run.welcomes_queued, run.jobs_existing)


def welcomes() -> list[tuple[str, str, str]]:
    return sorted(
        Message.objects.filter(kind=Message.Kind.WELCOME).values_list(
            "job__reference", "contact__name", "idempotency_key"
        )
    )


@pytest.mark.django_db
class TestJobImports:
    @pytest.fixture
    def world(self, installation, repair, charlie):
        return installation, repair

    def test_it_opens_the_files_jobs_and_welcomes_each_contact_once(
        self, bob, world, django_capture_on_commit_callbacks
    ):
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        assert (run.status, run.invalid_rows, run.valid_rows) == (ImportRun.Status.VALIDATED, 0, 3)
        assert planned(run) == (2, 3, 0)
        assert done(run) == (0, 0, 0)
        assert not Job.objects.exists()  # checking writes nothing but the run

        run = run_started(run, django_capture_on_commit_callbacks)
        assert run.status == ImportRun.Status.DONE, run.failure
        assert (run.customers_created, run.contacts_created) == (2, 3)
        assert done(run) == (2, 3, 0)
        assert planned(run) == (2, 3, 0)  # the check's counts stay beside what was done
        dupont = Job.objects.get(customer__name="Dupont household")
        acme = Job.objects.get(customer__name="Acme Telecom")
        assert (dupont.title, dupont.pipeline.name, dupont.owner.username) == (
            "Heat pump installation",
            "Installation",
            "bob",
        )
        assert sorted(dupont.contacts.values_list("name", flat=True)) == ["Jean Dupont", "Marie Dupont"]
        assert dupont.milestones.get(stage__position=1).planned_date == date(2026, 3, 2)
        assert (acme.reference, acme.title, acme.pipeline.name, acme.owner.username) == (
            "J-2026-0042",
            "Fibre repair",
            "Repair",
            "charlie",
        )
        assert list(acme.contacts.values_list("name", flat=True)) == ["Sam Carter"]
        # One welcome per contact of each new job, under job_create's idempotency key.
        assert welcomes() == sorted(
            (job.reference, contact.name, f"welcome:{job.pk}:{contact.pk}:email")
            for job in (dupont, acme)
            for contact in job.contacts.all()
        )
        assert len(welcomes()) == 3

    def test_importing_the_same_file_again_opens_nothing_and_sends_nothing(
        self, bob, world, django_capture_on_commit_callbacks
    ):
        run_started(
            import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob), django_capture_on_commit_callbacks
        )
        jobs, sent = list(Job.objects.order_by("pk").values_list("pk", flat=True)), welcomes()

        again = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        assert (again.invalid_rows, again.contacts_to_create) == (0, 0)
        assert planned(again) == (0, 0, 2)
        again = run_started(again, django_capture_on_commit_callbacks)
        assert again.status == ImportRun.Status.DONE, again.failure
        assert done(again) == (0, 0, 2)
        assert list(Job.objects.order_by("pk").values_list("pk", flat=True)) == jobs
        assert welcomes() == sent
        assert Message.objects.count() == len(sent)

    def test_the_welcomes_are_queued_with_the_jobs_and_sent_after_commit(
        self, bob, world, django_capture_on_commit_callbacks
    ):
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        with django_capture_on_commit_callbacks(execute=False) as started:
            import_start(run=run)
        with django_capture_on_commit_callbacks(execute=False) as after_commit:
            started[0]()  # the import task: one transaction
        queued = Message.objects.filter(kind=Message.Kind.WELCOME)
        assert queued.count() == 3
        assert set(queued.values_list("status", flat=True)) == {Message.Status.QUEUED}  # nothing sent inside it
        assert after_commit  # the outbox's hand-over to the workers, once committed
        for callback in after_commit:
            callback()
        assert not Message.objects.filter(kind=Message.Kind.WELCOME, status=Message.Status.QUEUED).exists()

    def test_a_row_with_an_unknown_pipeline_is_that_rows_error(self, bob, world, django_capture_on_commit_callbacks):
        rows = (*JOB_ROWS[:2], JOB_ROWS[2].replace(",Repair,", ",Plumbing,"))
        run = import_create(file_name="jobs.csv", data=job_csv(*rows), actor=bob)
        assert (run.valid_rows, run.invalid_rows) == (2, 1)
        assert [(e["row"], e["column"], e["message"]) for e in run.errors] == [
            (4, "Pipeline", "“Plumbing” is not one of: Installation, Repair.")
        ]
        run = run_started(run, django_capture_on_commit_callbacks, valid_only=True)
        assert list(Job.objects.values_list("title", flat=True)) == ["Heat pump installation"]
        assert len(welcomes()) == 2

    def test_an_unknown_or_inactive_owner_is_that_rows_error(self, bob, world, dana):
        run = import_create(
            file_name="jobs.csv",
            data=job_csv(
                JOB_ROWS[0].replace("Installation,,", "Installation,nobody@example.com,"),
                JOB_ROWS[2].replace("charlie", "dana"),
            ),
            actor=bob,
        )
        assert [(e["row"], e["column"], e["message"]) for e in run.errors] == [
            (2, "Owner", "No staff member has the username or email “nobody@example.com”."),
            (3, "Owner", "dana is not an active staff member and cannot be a job owner."),
        ]

    def test_a_pipeline_without_stages_is_that_rows_error(self, bob, world):
        Pipeline.objects.create(name="Maintenance")
        rows = (JOB_ROWS[2].replace(",Repair,", ",Maintenance,"),)
        run = import_create(file_name="jobs.csv", data=job_csv(*rows), actor=bob)
        assert [e["message"] for e in run.errors] == ["The Maintenance pipeline has no stages yet."]

    def test_the_reference_of_another_customers_job_is_an_error(self, bob, world, other_customer, installation):
        dupont = Customer.objects.create(name="Dupont household")
        theirs = job_create(
            customer=dupont,
            pipeline=installation,
            owner=bob,
            title="Boiler",
            actor=bob,
            reference="J-2026-0042",
            notify_customer=False,
            not_told_reason="Test set-up.",
        )
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        assert [(e["row"], e["column"], e["message"]) for e in run.errors] == [
            (4, "Job reference", "J-2026-0042 is the reference of a job of Dupont household.")
        ]
        assert theirs.reference == "J-2026-0042"

    def test_an_existing_job_is_already_there_by_reference_or_by_title(
        self, bob, world, installation, repair, django_capture_on_commit_callbacks
    ):
        dupont = Customer.objects.create(name="Dupont household")
        acme = Customer.objects.create(name="Acme Telecom", kind=Customer.Kind.COMPANY)
        made = [
            job_create(
                customer=dupont,
                pipeline=installation,
                owner=bob,
                title="Heat pump installation",
                actor=bob,
                notify_customer=False,
                not_told_reason="Test set-up.",
            ),
            job_create(
                customer=acme,
                pipeline=repair,
                owner=bob,
                title="Another title",
                actor=bob,
                reference="J-2026-0042",
                notify_customer=False,
                not_told_reason="Test set-up.",
            ),
        ]
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        assert run.invalid_rows == 0
        assert planned(run) == (0, 0, 2)
        run = run_started(run, django_capture_on_commit_callbacks)
        assert (run.status, run.customers_joined, run.contacts_created) == (ImportRun.Status.DONE, 2, 3)
        assert done(run) == (0, 0, 2)
        assert list(Job.objects.order_by("pk")) == made
        assert made[0].contacts.count() == 0  # an existing job is left as it is
        assert welcomes() == []

    def test_a_closed_job_with_the_same_title_does_not_count(
        self, bob, world, installation, django_capture_on_commit_callbacks
    ):
        dupont = Customer.objects.create(name="Dupont household")
        old = job_create(
            customer=dupont,
            pipeline=installation,
            owner=bob,
            title="Heat pump installation",
            actor=bob,
            notify_customer=False,
            not_told_reason="Test set-up.",
        )
        Job.objects.filter(pk=old.pk).update(status=Job.Status.DONE, closed_at=timezone.now())
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS[:2]), actor=bob)
        assert planned(run) == (1, 2, 0)

    def test_the_done_counts_are_what_the_import_did_not_what_the_check_expected(
        self, bob, world, installation, django_capture_on_commit_callbacks
    ):
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        assert planned(run) == (2, 3, 0)
        # Between the check and the start, Dupont's job is opened from its page.
        dupont = Customer.objects.create(name="Dupont household")
        job_create(
            customer=dupont,
            pipeline=installation,
            owner=bob,
            title="Heat pump installation",
            actor=bob,
            notify_customer=False,
            not_told_reason="Test set-up.",
        )
        run = run_started(run, django_capture_on_commit_callbacks)
        assert run.status == ImportRun.Status.DONE, run.failure
        assert done(run) == (1, 1, 1)  # found, not opened twice: only Acme's job and Sam's welcome
        assert len(welcomes()) == 1
        assert planned(run) == (2, 3, 0)

    def test_a_failure_while_opening_the_jobs_leaves_nothing(
        self, bob, world, django_capture_on_commit_callbacks, monkeypatch
    ):
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        opened = []

        def second_one_breaks(**kwargs):
            if opened:
                raise RuntimeError("disk full")
            opened.append(job_create(**kwargs))
            return opened[-1]

        monkeypatch.setattr(import_services, "job_create", second_one_breaks)
        run = run_started(run, django_capture_on_commit_callbacks)
        assert (run.status, run.failure) == (ImportRun.Status.FAILED, "An unexpected error stopped the import.")
        assert len(opened) == 1  # the first job and its welcomes were written, then rolled back
        assert done(run) == (0, 0, 0)
        assert not Job.objects.exists()
        assert not Message.objects.exists()
        assert not Customer.objects.exists()
        assert not Contact.objects.exists()

    def test_a_job_refused_at_the_write_names_its_row(
        self, bob, world, django_capture_on_commit_callbacks, monkeypatch
    ):
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)

        def refused(**kwargs):
            raise DomainError("The Repair pipeline is no longer in use.")

        monkeypatch.setattr(import_services, "job_create", refused)
        run = run_started(run, django_capture_on_commit_callbacks)
        assert (run.status, run.failure) == (ImportRun.Status.FAILED, "Row 2: The Repair pipeline is no longer in use.")
        assert not Customer.objects.exists()

    def test_a_file_without_job_columns_opens_no_job(self, bob, world, django_capture_on_commit_callbacks):
        run = import_create(file_name="x.csv", data=csv_bytes(*GOOD), actor=bob)
        assert planned(run) == (0, 0, 0)
        run = run_started(run, django_capture_on_commit_callbacks)
        assert done(run) == (0, 0, 0)
        assert not Job.objects.exists()
        assert not Message.objects.exists()

    def test_a_file_opening_too_many_jobs_for_one_transaction_is_refused(self, bob, world, monkeypatch):
        monkeypatch.setattr(csv_import, "MAX_JOB_ROWS", 2)
        message = "The file has 3 rows with a job; one import opens jobs from 2 rows at most."
        with pytest.raises(DomainError, match=message):
            import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS), actor=bob)
        assert not ImportRun.objects.exists()  # refused having written nothing
        run = import_create(file_name="jobs.csv", data=job_csv(*JOB_ROWS[:2]), actor=bob)
        assert run.status == ImportRun.Status.VALIDATED
        other = import_create(
            file_name="x.csv",
            data=b"Who,Person,Mail,Work\r\nA,B,b@example.com,W1\r\nA,C,c@example.com,W1\r\nA,D,d@example.com,W1\r\n",
            actor=bob,
        )
        with pytest.raises(DomainError, match=message):
            import_validate(run=other, mapping={"customer_name": 0, "contact_name": 1, "email": 2, "job_title": 3})
