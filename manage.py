#!/usr/bin/env python
from patronage.cli import main

if __name__ == "__main__":
    main()
