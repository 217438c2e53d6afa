"""Staff CRM views, one module per area. Views are thin: read through crm.selectors, write through
crm.services, and show a DomainError's message as it is."""
