from siaga.cli import app

app()
