"""The JSON API for other systems (/api/v1/): django-ninja over the same services as the staff pages."""
