from sagetext.cli import main

raise SystemExit(main())
