#!/usr/bin/env bash
# Deploy or update StreamDesk on a Lightsail (or any Debian/Ubuntu) VM with 512 MB RAM.
# Run on the VM from the repository checkout:  bash infrastructure/lightsail/deploy.sh
# Idempotent: installs Docker if missing, adds swap, builds images, migrates, starts the
# stack, and installs a daily cron job for partition upkeep and retention.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ! -f .env ]]; then
    echo "deploy: no .env; create it: cp infrastructure/lightsail/env.template .env && chmod 600 .env" >&2
    exit 1
fi
chmod 600 .env
if ! grep -qE '^DATABASE_URL=.+' .env; then
    echo "deploy: DATABASE_URL is empty in .env" >&2
    exit 1
fi

if ! command -v docker >/dev/null 2>&1; then
    echo "deploy: installing Docker"
    sudo apt-get update -qq
    sudo apt-get install -y -qq docker.io docker-compose-v2 || sudo apt-get install -y -qq docker.io docker-compose
    sudo usermod -aG docker "$USER" || true
fi
COMPOSE="docker compose"
$COMPOSE version >/dev/null 2>&1 || COMPOSE="docker-compose"

# 512 MB VMs need swap for image builds; the running stack stays within its limits.
if [[ "$(swapon --show | wc -l)" -eq 0 ]]; then
    echo "deploy: adding 1 GB swap"
    sudo fallocate -l 1G /swapfile && sudo chmod 600 /swapfile
    sudo mkswap /swapfile >/dev/null && sudo swapon /swapfile
    grep -q '/swapfile' /etc/fstab || echo '/swapfile none swap sw 0 0' | sudo tee -a /etc/fstab >/dev/null
fi

echo "deploy: building images"
$COMPOSE build
echo "deploy: migrating and starting"
$COMPOSE up -d --remove-orphans

# Daily partition upkeep: create the next days' partitions and drop those past RETENTION_DAYS.
CRON="17 3 * * * cd $(pwd) && $COMPOSE run --rm migrate streamdesk partitions >> /var/log/streamdesk-partitions.log 2>&1"
( crontab -l 2>/dev/null | grep -v 'streamdesk partitions' ; echo "$CRON" ) | crontab -

echo "deploy: done. Health: curl -s http://127.0.0.1:8081/health | python3 -m json.tool"
echo "deploy: dashboard via SSH tunnel: ssh -L 8080:127.0.0.1:8080 <vm>  then http://127.0.0.1:8080"
