#!/usr/bin/env bash
# GitOps mode of the deploy (repository variable DEPLOY_MODE=gitops): pin an image digest in
# one environment's values file and hand it to git, where Argo CD picks it up.
#
#   scripts/gitops-publish.sh <environment> <sha256:digest>      after a build on that branch
#   scripts/gitops-publish.sh --promote <from-env> <to-env>       copy a digest, never rebuild
#   scripts/gitops-publish.sh --rollback <env> [sha256:digest]    back to the digest pinned
#                                                                 before the current one
#
#   testing, staging  commit on the environment's branch and push (Argo CD syncs on its own)
#   production        push a branch gitops/production-<digest> for a pull request; the caller
#                     opens it (`gh pr create`), a person merges it and presses Sync
#
# Optional environment: BEFORE (the push's previous head: a push that only changed values
# files pinned a digest itself and is not published again, which would loop) and SOURCE_SHA
# (the commit the image was built from, for the message).
# Progress goes to stderr; stdout is the result for the caller: `action=none|commit|pull-request`
# and, for a pull request, `branch=<name>`. Run from the repository root, in a checkout whose
# `origin` it may push to.
set -euo pipefail

die() { echo "gitops-publish: $*" >&2; exit 2; }
say() { echo "gitops-publish: $*" >&2; }
out() { echo "$1"; }
# tsx from the checkout's node_modules (after `npm ci`); node directly starts faster than npx.
gitops() { node --import tsx src/gitops/cli.ts "$@"; }

branch_of() {
  case "$1" in
    production) echo main ;;
    staging | testing) echo "$1" ;;
    *) die "unknown environment '$1' (production, staging, testing)" ;;
  esac
}

if [ "${1:-}" = --promote ]; then
  [ $# -eq 3 ] || die "usage: $0 --promote <from-env> <to-env>"
  from="$2" env="$3"
  [ "$from" != "$env" ] || die "from and to are both '$env'"
  branch_of "$from" >/dev/null
  # The source file as the source branch has it: that is what Argo CD runs there.
  git fetch --quiet origin "$(branch_of "$from")"
  digest="$(git show "FETCH_HEAD:$(gitops file "$from")" | gitops read -)"
  # The change goes on top of the target branch, whatever branch this checkout is on.
  git fetch --quiet origin "$(branch_of "$env")"
  git checkout --quiet --detach FETCH_HEAD
  why="promote $from to $env"
elif [ "${1:-}" = --rollback ]; then
  [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 --rollback <env> [sha256:digest]"
  env="$2"
  git fetch --quiet origin "$(branch_of "$env")"
  git checkout --quiet --detach FETCH_HEAD
  file="$(gitops file "$env")"
  current="$(gitops read "$file" 2>/dev/null || true)"
  if [ $# -eq 3 ]; then
    digest="${3##*@}"
  else
    # Newest first: the first pin that differs from the current one is what ran before it.
    digest=""
    while read -r commit; do
      pinned="$(git show "$commit:$file" | gitops read - 2>/dev/null || true)"
      if [ -n "$pinned" ] && [ "$pinned" != "$current" ]; then digest="$pinned"; break; fi
    done < <(git log --format=%H -- "$file")
    [ -n "$digest" ] || die "no earlier digest in the history of $file: nothing to roll back to"
  fi
  why="roll back $env from ${current:-no digest}"
else
  [ $# -eq 2 ] || die "usage: $0 <environment> <sha256:digest> | --promote <from-env> <to-env> | --rollback <env> [digest]"
  env="$1" digest="$2"
  branch_of "$env" >/dev/null
  if [ -n "${BEFORE:-}" ] && [ "${BEFORE//0/}" != "" ] && git cat-file -e "$BEFORE^{commit}" 2>/dev/null; then
    changed="$(git diff --name-only "$BEFORE" HEAD)"
    if [ -n "$changed" ] && ! grep -qvE '^charts/berth/values-(dev|staging|prod)\.yaml$' <<<"$changed"; then
      say "this push only changed pinned digests: nothing new to publish"
      out action=none
      exit 0
    fi
  fi
  why="deploy ${SOURCE_SHA:-$(git rev-parse HEAD)}"
fi

file="$(gitops file "$env")"
gitops set "$env" "$digest" >&2
if git diff --quiet -- "$file"; then
  say "$file already pins $digest"
  out action=none
  exit 0
fi

# The bot is author and committer (a rebase below commits again); runners have no git identity.
export GIT_AUTHOR_NAME="github-actions[bot]" GIT_COMMITTER_NAME="github-actions[bot]"
export GIT_AUTHOR_EMAIL="41898282+github-actions[bot]@users.noreply.github.com"
export GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
git add -- "$file"
git commit --quiet -m "gitops($env): pin ${digest:0:19}" -m "$why: image.digest $digest in $file"

target="$(branch_of "$env")"
if [ "$env" = production ]; then
  pr_branch="gitops/production-${digest:7:12}"
  git push --quiet --force origin "HEAD:refs/heads/$pr_branch"
  say "pushed $pr_branch: open a pull request into main"
  out action=pull-request
  out "branch=$pr_branch"
  exit 0
fi

# Someone may have pushed to the branch meanwhile: replay the one-line change on top and retry.
for attempt in 1 2 3; do
  if git push --quiet origin "HEAD:refs/heads/$target"; then
    say "pushed to $target: Argo CD syncs berth-$env"
    out action=commit
    exit 0
  fi
  say "push to $target rejected (attempt $attempt): rebasing on the new head"
  git fetch --quiet origin "$target"
  git rebase --quiet FETCH_HEAD
done
die "could not push to $target after 3 attempts"
