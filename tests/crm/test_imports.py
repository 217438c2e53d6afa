"""CSV import: reading the file (crm.imports) and the services that check, start and run it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from crm import imports
from crm.errors import DomainError
from crm.imports import ImportFileError, check_rows, guess_mapping, parse_csv
from crm.models import Contact, Customer, ImportRun
from crm.services.imports import (
    STALLED_AFTER,
    import_create,
    import_restart,
    import_run,
    import_start,
    import_validate,
)
from crm.tasks import run_import

HEADER = (
    "Customer name,Customer kind,Address,Contact name,Email,Phone,Language,Preferred channel,"
    "SMS consent,SMS consent source,Time zone"
)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode(encoding)


def check(data: bytes) -> imports.CheckedRows:
    parsed = parse_csv(data)
    return check_rows(parsed.rows, mapping=guess_mapping(parsed.headers), headers=parsed.headers, now=NOW)


def messages_by_row(checked: imports.CheckedRows) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.message) for e in checked.errors]


GOOD = (
    "Dupont household,household,1 rue des Lilas,Marie Dupont,marie@example.com,,fr,email,no,,Europe/Paris",
    "Dupont household,,,Jean Dupont,,+33 6 98 76 54 32,fr,sms,yes,signed order form,",
    "Acme Telecom,company,,Sam Carter,sam@acme.example,,en,,,,America/Toronto",
)


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
        # is read without it, in the header row too (crm.imports.parse_csv).
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
        missing = imports.missing_fields(guess_mapping(["Name", "Notes"]))
        assert [str(f.label) for f in missing] == ["Customer name", "Email or phone"]
        assert imports.missing_fields(guess_mapping(["Client", "Contact", "Phone"])) == []


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

    def test_a_phone_that_cannot_be_dialled_is_a_row_error(self):
        checked = check(
            csv_bytes(
                "Dupont,,,Paul,,call me maybe,fr,sms,yes,signed order form,",  # row 2
                "Dupont,,,Luc,luc@example.com,12345,fr,,,,",  # row 3: too short
                "Dupont,,,Zoé,,06.12.34.56.78,fr,,,,",  # row 4: fine
            )
        )
        message = (
            "Enter a phone number that can be dialled: 6 to 15 digits, with an optional + in front; "
            "spaces, dots, dashes, slashes and brackets are fine."
        )
        assert messages_by_row(checked) == [(2, "Phone", message), (3, "Phone", message)]
        assert [contact.phone for _name, contact in checked.contacts] == ["06.12.34.56.78"]

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
        report = imports.errors_csv([{"row": 2, "column": "=HYPERLINK(1)", "message": "@SUM(A1)"}])
        assert report.splitlines()[1] == "2,'=HYPERLINK(1),'@SUM(A1)"

    def test_errors_csv_uses_the_files_delimiter(self):
        report = imports.errors_csv([{"row": 2, "column": "Email", "message": "Enter; a valid one."}], delimiter=";")
        assert report.splitlines() == ["Row;Column;Problem", '2;Email;"Enter; a valid one."']


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
            import_create(file_name="x.csv", data=b"a" * (imports.MAX_FILE_BYTES + 1), actor=bob)
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
            f"person{i}@example.com,+33 6 00 00 {i:05d},{'fr' if i % 2 else 'en'},,{'yes' if i % 3 == 0 else 'no'},"
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
