"""Documents of the year's plan: the 6- and 12-month reports (DOCX, XLSX, HTML) and the Excel
templates a commune fills in. Reads through geo/ and antt/; used by api/ (api → reports → geo)."""
