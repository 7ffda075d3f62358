"""Reading result files and turning them into what people read: tables, comparisons."""
