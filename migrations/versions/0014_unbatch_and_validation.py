"""unbatch requests, re-batch columns and validation reports

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 06:40:31
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('validation_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('record_type', sa.String(length=20), nullable=True),
    sa.Column('date_from', sa.Date(), nullable=True),
    sa.Column('date_to', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('checked', sa.Integer(), nullable=False),
    sa.Column('mismatched', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_validation_report_batch_id_batch'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_validation_report_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['job_run.id'], name=op.f('fk_validation_report_run_id_job_run'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_validation_report'))
    )
    with op.batch_alter_table('validation_report', schema=None) as batch_op:
        batch_op.create_index('ix_validation_report_company', ['company_id', 'id'], unique=False)

    op.create_table('unbatch_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('qbo_action', sa.String(length=10), nullable=False),
    sa.Column('unlink_payments', sa.Boolean(), nullable=False),
    sa.Column('step', sa.String(length=10), nullable=False),
    sa.Column('state_before', sa.String(length=20), nullable=False),
    sa.Column('qbo_request_id', sa.String(length=32), nullable=False),
    sa.Column('qbo_result', sa.String(length=200), nullable=True),
    sa.Column('unlinked', sa.JSON(), nullable=False),
    sa.Column('cw_batch_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('requested_by', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batch.id'], name=op.f('fk_unbatch_request_batch_id_batch'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_unbatch_request_company_id_company'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['batch_item.id'], name=op.f('fk_unbatch_request_item_id_batch_item'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['job_run.id'], name=op.f('fk_unbatch_request_run_id_job_run'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unbatch_request'))
    )
    with op.batch_alter_table('unbatch_request', schema=None) as batch_op:
        batch_op.create_index('ix_unbatch_request_item', ['item_id', 'id'], unique=False)
        batch_op.create_index('ix_unbatch_request_run', ['run_id', 'id'], unique=False)

    with op.batch_alter_table('batch_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('earlier_qbo_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('earlier_state', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('rebatch_mode', sa.String(length=10), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('batch_item', schema=None) as batch_op:
        batch_op.drop_column('rebatch_mode')
        batch_op.drop_column('earlier_state')
        batch_op.drop_column('earlier_qbo_id')

    with op.batch_alter_table('unbatch_request', schema=None) as batch_op:
        batch_op.drop_index('ix_unbatch_request_run')
        batch_op.drop_index('ix_unbatch_request_item')

    op.drop_table('unbatch_request')
    with op.batch_alter_table('validation_report', schema=None) as batch_op:
        batch_op.drop_index('ix_validation_report_company')

    op.drop_table('validation_report')

