"""Staff CRM forms (crispy-forms, Bootstrap 5), one module per area. Forms validate; services write."""
