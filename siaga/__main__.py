from siaga.cli import app

if __name__ == "__main__":  # a guard, so that multiprocessing's spawn can import this module
    app()
